/** Options of the global-pointer method (see src/models/global-pointer.ts); every option typed, defaulted and described. */
import { section } from '../sections.js';

export const GlobalPointerSection = section({});
