/** The connection manager's forward_client_cert_details and set_current_client_cert_details. */
import { ConfigError } from '../../core/errors.ts';
import type { JsonObject } from '../../core/json.ts';
import { onlyFields, optBool, optObject, optString } from '../config-proto/fields.ts';
import { fieldPath } from '../config-proto/path.ts';
import type { ForwardClientCertDetails, XfccConfig } from './xfcc.ts';

const MODES: readonly ForwardClientCertDetails[] = [
  'SANITIZE',
  'FORWARD_ONLY',
  'APPEND_FORWARD',
  'SANITIZE_SET',
  'ALWAYS_FORWARD_ONLY',
];

/** Reads both fields from an HttpConnectionManager object; nothing when neither is set (SANITIZE). */
export function compileXfcc(hcm: JsonObject, path: string): { xfcc?: XfccConfig } {
  if (hcm.forward_client_cert_details === undefined && hcm.set_current_client_cert_details === undefined)
    return {};
  const mode = optString(hcm, 'forward_client_cert_details', path) ?? 'SANITIZE';
  if (!(MODES as readonly string[]).includes(mode))
    throw new ConfigError(
      fieldPath(path, 'forward_client_cert_details'),
      `unknown value ${JSON.stringify(mode)}`,
    );
  const setPath = fieldPath(path, 'set_current_client_cert_details');
  const set = optObject(hcm, 'set_current_client_cert_details', path) ?? {};
  onlyFields(set, setPath, ['subject', 'cert', 'uri', 'dns'], {
    chain: 'not supported by Weft',
  });
  return {
    xfcc: {
      forward: mode as ForwardClientCertDetails,
      set: {
        subject: optBool(set, 'subject', setPath) ?? false,
        cert: optBool(set, 'cert', setPath) ?? false,
        uri: optBool(set, 'uri', setPath) ?? false,
        dns: optBool(set, 'dns', setPath) ?? false,
      },
    },
  };
}
