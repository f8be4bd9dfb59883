/** When a raster was acquired, as an ISO date, and where that was read. */
export interface AcquisitionDate {
  date: string;
  source: 'gdal-metadata' | 'file-name' | 'tiff-datetime';
}

/** GDAL metadata items that name an acquisition (sensor products and GDAL drivers write these). */
const GDAL_DATE_ITEMS = /^(ACQUISITION_?DATE|DATE_?ACQUIRED|ACQUISITION_?TIME|SENSING_?(TIME|DATE)|DATATAKE_1_DATATAKE_SENSING_START|PRODUCT_START_TIME|IMAGE_?DATE|DATE)$/i;

/** A calendar date from year, month and day, or null when they name none (month 13, 30 February). */
function isoDate(y: number, m: number, d: number): string | null {
  if (y < 1900 || y > 2100) return null;
  const t = new Date(Date.UTC(y, m - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== m - 1 || t.getUTCDate() !== d) return null;
  return t.toISOString().slice(0, 10);
}

/** The first date in a text: YYYY-MM-DD, YYYY:MM:DD (TIFF) or YYYYMMDD not inside a longer run of digits. */
export function dateInText(text: string): string | null {
  for (const m of text.matchAll(/(?<!\d)(\d{4})([-:_.]?)(\d{2})\2(\d{2})(?!\d)/g)) {
    const date = isoDate(Number(m[1]), Number(m[3]), Number(m[4]));
    if (date) return date;
  }
  return null;
}

/** The date in a path's or URL's last segment (NAIP `m_4709963_se_14_1_20090818.tif`, Landsat `..._20150818_...`). */
export function dateFromFileName(uri: string): string | null {
  const name = uri.split(/[/\\]/).pop()!.split('?')[0];
  return dateInText(name);
}

/** The value of the first acquisition item in a GDAL_METADATA XML tag. */
function dateFromGdalMetadata(xml: string): string | null {
  for (const m of xml.matchAll(/<Item\s+name="([^"]+)"[^>]*>([^<]*)<\/Item>/g)) {
    if (!GDAL_DATE_ITEMS.test(m[1])) continue;
    const date = dateInText(m[2]);
    if (date) return date;
  }
  return null;
}

/**
 * The acquisition date of a raster. Explicit GDAL metadata comes first, then the file name (how NAIP, Landsat and
 * Sentinel products are named), and the TIFF DateTime tag last: it is when the file was written, which for most
 * products is processing time, not acquisition.
 */
export function acquisitionDate(uri: string, tags: { gdalMetadata?: string; dateTime?: string }): AcquisitionDate | null {
  const fromGdal = tags.gdalMetadata ? dateFromGdalMetadata(tags.gdalMetadata) : null;
  if (fromGdal) return { date: fromGdal, source: 'gdal-metadata' };
  const fromName = dateFromFileName(uri);
  if (fromName) return { date: fromName, source: 'file-name' };
  const fromTiff = tags.dateTime ? dateInText(tags.dateTime) : null;
  if (fromTiff) return { date: fromTiff, source: 'tiff-datetime' };
  return null;
}
