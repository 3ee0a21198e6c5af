// @spf/labs/reference: the labs' reference solutions and the known-buggy variants built from them. A
// separate entry so that the grader and the lab outlines never ship them by accident.
export { referenceSources } from './reference-solutions.js';
export { variantSources } from './variants.js';
