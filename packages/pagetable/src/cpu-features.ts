import { InvalidArgumentError, UnsupportedCpuFeatureError } from './errors.js';

/**
 * The paging features a CPU enumerates through CPUID (Intel SDM Vol. 3A, 4.1.4). Each one either makes a
 * control bit settable (without it the bit is reserved, and setting it faults) or changes which entry bits
 * the walk treats as reserved. MAXPHYADDR (CPUID.80000008H:EAX[7:0]) is not here: it is a property of the
 * machine's physical memory (`PhysicalMemory({ maxPhyAddr })`), and the MMU takes it from there.
 */
export type CpuFeatures = {
  /**
   * CPUID.80000001H:EDX.Page1GB [bit 26]: 1 GiB pages. Without it, PS (bit 7) of a PDPTE is reserved, so a
   * present PDPTE with PS = 1 ends the walk with a reserved-bit #PF (SDM 4.5, table 4-15 and 4.7).
   */
  readonly pdpe1gb: boolean;
  /**
   * CPUID.80000001H:EDX.NX [bit 20]: execute-disable. Without it IA32_EFER.NXE cannot be set, so XD (bit 63)
   * of every present entry is reserved and no fetch is blocked by it.
   */
  readonly nx: boolean;
  /** CPUID.(EAX=07H,ECX=0):ECX.LA57 [bit 16]: 5-level paging (CR4.LA57 may be set). */
  readonly la57: boolean;
  /** CPUID.(EAX=07H,ECX=0):EBX.SMEP [bit 7]: CR4.SMEP may be set. */
  readonly smep: boolean;
  /** CPUID.(EAX=07H,ECX=0):EBX.SMAP [bit 20]: CR4.SMAP may be set. */
  readonly smap: boolean;
  /** CPUID.(EAX=07H,ECX=0):ECX.PKU [bit 3]: protection keys for user-mode pages (CR4.PKE may be set). */
  readonly pku: boolean;
  /** CPUID.(EAX=07H,ECX=0):ECX.PKS [bit 31]: protection keys for supervisor-mode pages (CR4.PKS may be set). */
  readonly pks: boolean;
  /** CPUID.01H:ECX.PCID [bit 17]: CR4.PCIDE may be set. */
  readonly pcid: boolean;
  /** CPUID.(EAX=07H,ECX=0):EBX.INVPCID [bit 10]: the INVPCID instruction exists (else it is #UD). */
  readonly invpcid: boolean;
  /** CPUID.01H:EDX.PGE [bit 13]: CR4.PGE may be set, and then G (bit 8) keeps a translation across CR3 loads. */
  readonly pge: boolean;
};

/** The names of {@link CpuFeatures}, in a stable order (for printing and for tests). */
export const CPU_FEATURE_NAMES = [
  'pdpe1gb',
  'nx',
  'la57',
  'smep',
  'smap',
  'pku',
  'pks',
  'pcid',
  'invpcid',
  'pge',
] as const satisfies readonly (keyof CpuFeatures)[];

/**
 * A modern x86-64 server CPU (Sapphire Rapids or later): every feature above. The default of `Mmu`, so a
 * machine built without `cpuFeatures` behaves as before these switches existed.
 */
export const MODERN_CPU_FEATURES: CpuFeatures = Object.freeze({
  pdpe1gb: true,
  nx: true,
  la57: true,
  smep: true,
  smap: true,
  pku: true,
  pks: true,
  pcid: true,
  invpcid: true,
  pge: true,
});

/** Where each feature is enumerated, for error messages. */
const CPUID_LEAF: Record<keyof CpuFeatures, string> = {
  pdpe1gb: 'CPUID.80000001H:EDX.Page1GB [bit 26]',
  nx: 'CPUID.80000001H:EDX.NX [bit 20]',
  la57: 'CPUID.(EAX=07H,ECX=0):ECX.LA57 [bit 16]',
  smep: 'CPUID.(EAX=07H,ECX=0):EBX.SMEP [bit 7]',
  smap: 'CPUID.(EAX=07H,ECX=0):EBX.SMAP [bit 20]',
  pku: 'CPUID.(EAX=07H,ECX=0):ECX.PKU [bit 3]',
  pks: 'CPUID.(EAX=07H,ECX=0):ECX.PKS [bit 31]',
  pcid: 'CPUID.01H:ECX.PCID [bit 17]',
  invpcid: 'CPUID.(EAX=07H,ECX=0):EBX.INVPCID [bit 10]',
  pge: 'CPUID.01H:EDX.PGE [bit 13]',
};

/**
 * The full feature set from a partial one (missing features are present, as on {@link MODERN_CPU_FEATURES}).
 * Throws {@link InvalidArgumentError} for an unknown name or a value that is not a boolean.
 */
export function resolveCpuFeatures(partial: Partial<CpuFeatures> = {}): CpuFeatures {
  if (partial === null || typeof partial !== 'object') {
    throw new InvalidArgumentError(`cpuFeatures must be an object of booleans, got ${String(partial)}`);
  }
  for (const [name, value] of Object.entries(partial)) {
    if (!(CPU_FEATURE_NAMES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(
        `unknown CPU feature '${name}': the features are ${CPU_FEATURE_NAMES.join(', ')}`,
      );
    }
    if (typeof value !== 'boolean') {
      throw new InvalidArgumentError(`CPU feature '${name}' must be true or false, got ${String(value)}`);
    }
  }
  return Object.freeze({ ...MODERN_CPU_FEATURES, ...partial });
}

/**
 * The control bits that need a feature, and the register each lives in (for messages). A MOV to CR4 or a
 * WRMSR to IA32_EFER that sets one of these without the feature raises #GP(0) on hardware (SDM Vol. 3A 2.5
 * "reserved bits"; Vol. 2 MOV CR and WRMSR).
 */
const CONTROL_BITS = {
  la57: { feature: 'la57', register: 'CR4.LA57' },
  smep: { feature: 'smep', register: 'CR4.SMEP' },
  smap: { feature: 'smap', register: 'CR4.SMAP' },
  pke: { feature: 'pku', register: 'CR4.PKE' },
  pks: { feature: 'pks', register: 'CR4.PKS' },
  pcide: { feature: 'pcid', register: 'CR4.PCIDE' },
  pge: { feature: 'pge', register: 'CR4.PGE' },
  nxe: { feature: 'nx', register: 'IA32_EFER.NXE' },
} as const satisfies Record<string, { feature: keyof CpuFeatures; register: string }>;

/** A control bit that exists only with a CPU feature. */
export type FeatureControlBit = keyof typeof CONTROL_BITS;

/**
 * The check a CPU makes when software sets a control bit: throws {@link UnsupportedCpuFeatureError} when
 * `value` is true and `features` lacks the feature behind `bit`. Clearing a bit is always allowed.
 *
 * Our choice for this impossible configuration: the hardware answer is #GP(0) on the MOV to CR4 (or the
 * WRMSR to EFER), and the register keeps its old value. The simulator has no instruction stream to deliver
 * that #GP to, and a kernel that sets such a bit is buggy (Linux checks CPUID first, e.g. `setup_smep()` in
 * arch/x86/kernel/cpu/common.c), so the write throws a typed error instead, and nothing changes.
 */
export function checkControlBit(features: CpuFeatures, bit: FeatureControlBit, value: boolean): void {
  if (!value) return;
  const { feature, register } = CONTROL_BITS[bit];
  if (!features[feature]) {
    throw new UnsupportedCpuFeatureError(
      `${register} cannot be set: this CPU does not enumerate ${feature.toUpperCase()} (${CPUID_LEAF[feature]}), ` +
        `so real hardware raises #GP(0) on the write and keeps the bit clear; enable the feature ` +
        `(cpuFeatures: { ${feature}: true }) or leave ${register} clear`,
      feature,
    );
  }
}

/**
 * Checks a set of control bits against `features` (the state a walk receives): throws
 * {@link UnsupportedCpuFeatureError} for the first bit that is set without its feature.
 */
export function checkControlBits(
  features: CpuFeatures,
  bits: { readonly [K in FeatureControlBit]?: boolean },
): void {
  for (const bit of Object.keys(CONTROL_BITS) as FeatureControlBit[]) {
    checkControlBit(features, bit, bits[bit] === true);
  }
}

/** Throws {@link UnsupportedCpuFeatureError} (an #UD on hardware) when the CPU has no INVPCID instruction. */
export function checkInvpcid(features: CpuFeatures): void {
  if (!features.invpcid) {
    throw new UnsupportedCpuFeatureError(
      `INVPCID does not exist on this CPU (${CPUID_LEAF.invpcid} = 0): real hardware raises #UD; ` +
        'flush with a CR3 load (loadCr3) or INVLPG instead, as Linux does without X86_FEATURE_INVPCID',
      'invpcid',
    );
  }
}
