// The entry esbuild bundles for the console's Try-it page: the unmodified SDK, as is.
export { default } from '@cloudbase/js-sdk';
