import { formatExercise, practiceExercise } from '@spf/labs';

/**
 * Binds a practice panel (src/components/Practice.astro): Show exercise (for the seed in the box), New
 * exercise (a random seed), Show answers. The exercise is `practiceExercise` of @spf/labs, the same as
 * `spf-grade practice`. `first` is the action of the click that loaded this module, carried out now.
 */
export function bindPractice(root: HTMLElement, first?: string): void {
  const lab = root.dataset.practice ?? '';
  const q = <T extends Element>(sel: string) => root.querySelector<T>(sel) as T;
  const seedBox = q<HTMLInputElement>('[data-practice-seed]');
  const question = q<HTMLElement>('[data-practice-question]');
  const answer = q<HTMLElement>('[data-practice-answer]');
  const answersBtn = q<HTMLButtonElement>('[data-practice-action="answers"]');
  const status = q<HTMLElement>('[data-practice-status]');
  const show = () => {
    const seed = Number(seedBox.value);
    try {
      const ex = practiceExercise(lab, seed);
      question.textContent = formatExercise(ex, false).split('\n\nWork it out')[0];
      answer.textContent = ex.answer.join('\n');
      question.hidden = false;
      answer.hidden = true;
      answersBtn.disabled = false;
      answersBtn.textContent = 'Show answers';
      status.textContent = `Exercise for seed ${seed}.`;
      root.dataset.seed = String(seed);
    } catch (err) {
      status.textContent = (err as Error).message;
      question.hidden = true;
      answer.hidden = true;
      answersBtn.disabled = true;
    }
  };
  const act = (action: string | undefined) => {
    if (action === 'show') show();
    else if (action === 'new') {
      seedBox.value = String(Math.floor(Math.random() * 2 ** 32));
      show();
    } else if (action === 'answers') {
      answer.hidden = !answer.hidden;
      answersBtn.textContent = answer.hidden ? 'Show answers' : 'Hide answers';
    }
  };
  root.addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>('[data-practice-action]');
    if (b && !b.disabled) act(b.dataset.practiceAction);
  });
  seedBox.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') show();
  });
  root.dataset.ready = 'true';
  if (first && !q<HTMLButtonElement>(`[data-practice-action="${first}"]`)?.disabled) act(first);
}
