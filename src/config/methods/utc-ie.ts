/** Options of the utc-ie method (see src/models/utc-ie.ts); every option typed, defaulted and described. */
import { section } from '../sections.js';

export const UtcIeSection = section({});
