import { HttpProblem } from './problem.ts';

export interface MultipartPart {
  name: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

const MAX_PARTS = 16;
const MAX_HEADER_BYTES = 4096;

/**
 * Parses a multipart/form-data body that express.raw has already buffered (and size-limited). Small on purpose:
 * the service takes one file and a few fields, so streaming parsers would buy nothing. Not Response.formData():
 * a part without a filename comes back from it as UTF-8 text, so a chip sent that way loses every byte above 0x7f
 * (busboy treats such parts as text fields too, and would be a dependency). Malformed input is a 400.
 */
export function parseMultipart(body: Buffer, contentType: string): MultipartPart[] {
  const m = /boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  if (!m) throw new HttpProblem(400, 'multipart/form-data needs a boundary parameter');
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const parts: MultipartPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new HttpProblem(400, 'the multipart body has no boundary line');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') return parts; // closing delimiter
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') throw new HttpProblem(400, 'malformed multipart boundary line');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0 || headerEnd - pos > MAX_HEADER_BYTES) throw new HttpProblem(400, 'malformed or oversize multipart part headers');
    const headers = parseHeaders(body.subarray(pos, headerEnd).toString('utf8'));
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), headerEnd + 4);
    if (next < 0) throw new HttpProblem(400, 'the multipart body ends before its closing boundary');
    const disposition = headers.get('content-disposition') ?? '';
    const name = /(?:^|;)\s*name="([^"]*)"/i.exec(disposition)?.[1];
    if (!/^form-data\b/i.test(disposition) || name === undefined) throw new HttpProblem(400, 'each multipart part needs Content-Disposition: form-data; name="..."');
    if (parts.length === MAX_PARTS) throw new HttpProblem(400, `at most ${MAX_PARTS} multipart parts are accepted`);
    parts.push({
      name,
      filename: /;\s*filename="([^"]*)"/i.exec(disposition)?.[1],
      contentType: headers.get('content-type'),
      data: body.subarray(headerEnd + 4, next),
    });
    pos = next + 2;
  }
}

function parseHeaders(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HttpProblem(400, 'malformed multipart part header');
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** Classic TIFF (II*\0, MM\0*) or BigTIFF (II+\0, MM\0+): a cheap check before handing bytes to a decoder. */
export function looksLikeTiff(data: Uint8Array): boolean {
  if (data.length < 8) return false;
  const [a, b, c, d] = data;
  return (a === 0x49 && b === 0x49 && (c === 0x2a || c === 0x2b) && d === 0) || (a === 0x4d && b === 0x4d && c === 0 && (d === 0x2a || d === 0x2b));
}
