import { PNG } from 'pngjs';
import { CHAR_ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH, glyphInk } from './bitmap-font.ts';

export type Rgb = [number, number, number];

/** An RGB raster to draw figures on, written out as PNG. */
export class Canvas {
  readonly pixels: Uint8Array;

  constructor(readonly width: number, readonly height: number, background: Rgb = [255, 255, 255]) {
    this.pixels = new Uint8Array(width * height * 4);
    this.fillRect(0, 0, width, height, background);
  }

  setPixel(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const p = (Math.floor(y) * this.width + Math.floor(x)) * 4;
    this.pixels.set([c[0], c[1], c[2], 255], p);
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = Math.max(0, Math.floor(y)); j < Math.min(this.height, Math.floor(y + h)); j++) {
      for (let i = Math.max(0, Math.floor(x)); i < Math.min(this.width, Math.floor(x + w)); i++) this.setPixel(i, j, c);
    }
  }

  strokeRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    this.fillRect(x, y, w, 1, c);
    this.fillRect(x, y + h - 1, w, 1, c);
    this.fillRect(x, y, 1, h, c);
    this.fillRect(x + w - 1, y, 1, h, c);
  }

  /** Draws text with its top-left corner at (x,y), each font pixel `scale` canvas pixels wide. */
  text(x: number, y: number, s: string, c: Rgb = [0, 0, 0], scale = 1): void {
    [...s].forEach((ch, k) => {
      for (let row = 0; row < GLYPH_HEIGHT; row++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (glyphInk(ch, col, row)) this.fillRect(x + (k * CHAR_ADVANCE + col) * scale, y + row * scale, scale, scale, c);
        }
      }
    });
  }

  toPng(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    png.data = Buffer.from(this.pixels);
    return PNG.sync.write(png);
  }
}

export const textWidth = (s: string, scale = 1) => s.length * CHAR_ADVANCE * scale;
export const TEXT_HEIGHT = GLYPH_HEIGHT;
