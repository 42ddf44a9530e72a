/** Options of the sener method (see src/models/sener.ts); every option typed, defaulted and described. */
import { section } from '../sections.js';

export const SenerSection = section({});
