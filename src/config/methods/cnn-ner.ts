/** Options of the cnn-ner method (see src/models/cnn-ner.ts); every option typed, defaulted and described. */
import { section } from '../sections.js';

export const CnnNerSection = section({});
