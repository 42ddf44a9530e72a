/** Options of the span-enum method (see src/models/span-enum.ts); every option typed, defaulted and described. */
import { section } from '../sections.js';

export const SpanEnumSection = section({});
