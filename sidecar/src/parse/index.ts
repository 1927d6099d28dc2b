// The parse stage's interface: a scraped body (or a string) in, selected families and warnings out.
export { formatFromContentType, parseExposition, parsePage } from './page.js';
export { ParseError, type Family, type FamilyType, type Format, type ParsedPage, type ParseWarning, type Sample, type SampleBudget, type WarningReason } from './types.js';
