/** The error of the map encoders (encode.ts, packed-table.ts): a value that does not fit a map field. */
import { TortieError } from '../../util/errors';

export class EncodeError extends TortieError {
  declare readonly code: 'ERR_DATAPATH_ENCODE';
  constructor(message: string) { super('ERR_DATAPATH_ENCODE', message); }
}
