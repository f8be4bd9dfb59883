/*
 * tilevec's optional native block decoding, behind Node-API. Built by scripts/build-native.mjs where Debian's
 * libdeflate-dev is present; without it, tilevec does the same work in JavaScript with Node's zlib.
 *
 *   inflateInto(src: Uint8Array, dst: Uint8Array): number
 *     libdeflate's whole-buffer zlib decompressor. TIFF stores each DEFLATE block as one zlib stream whose
 *     decoded size is known, the case libdeflate is built for; it decodes about twice as fast as streaming zlib.
 *     Returns the bytes written; -1 when the stream holds more than dst can take; throws on a corrupt stream.
 *
 *   deinterleave(src: Uint8Array, dst: Uint8Array, samples: number, bytesPerSample: number): void
 *     pixel-interleaved samples (RGBNRGBN...) to planes (RR..GG..BB..NN..), the layout windows are read in.
 */
#include <libdeflate.h>
#include <node_api.h>
#include <stdint.h>

static void free_decompressor(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  libdeflate_free_decompressor((struct libdeflate_decompressor *)data);
}

static int typed_bytes(napi_env env, napi_value value, void **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  if (napi_get_typedarray_info(env, value, &type, length, data, &buffer, &offset) != napi_ok) return 0;
  return type == napi_uint8_array;
}

static napi_value inflate_into(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *src, *dst;
  size_t src_len, dst_len, written = 0;
  struct libdeflate_decompressor *d;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !typed_bytes(env, argv[0], &src, &src_len) || !typed_bytes(env, argv[1], &dst, &dst_len)) {
    napi_throw_type_error(env, NULL, "inflateInto(src: Uint8Array, dst: Uint8Array)");
    return NULL;
  }
  /* One decompressor per thread: each worker thread loads its own instance of the addon. */
  if (napi_get_instance_data(env, (void **)&d) != napi_ok || d == NULL) {
    d = libdeflate_alloc_decompressor();
    if (d == NULL || napi_set_instance_data(env, d, free_decompressor, NULL) != napi_ok) {
      napi_throw_error(env, NULL, "libdeflate: out of memory");
      return NULL;
    }
  }
  switch (libdeflate_zlib_decompress(d, src, src_len, dst, dst_len, &written)) {
    case LIBDEFLATE_SUCCESS:
      napi_create_int64(env, (int64_t)written, &result);
      return result;
    case LIBDEFLATE_INSUFFICIENT_SPACE:
      napi_create_int64(env, -1, &result);
      return result;
    default:
      napi_throw_error(env, NULL, "invalid DEFLATE data (libdeflate could not decode the zlib stream)");
      return NULL;
  }
}

#define DEINTERLEAVE(type)                                                   \
  do {                                                                       \
    const type *in = (const type *)src;                                      \
    type *out = (type *)dst;                                                 \
    for (size_t s = 0; s < samples; s++) {                                   \
      type *plane = out + s * pixels;                                        \
      for (size_t p = 0; p < pixels; p++) plane[p] = in[p * samples + s];    \
    }                                                                        \
  } while (0)

/* Four 8-bit samples per pixel (RGBN imagery such as NAIP), the most common interleaved layout: plain loops
 * with the stride fixed at compile time, and an SSSE3 kernel 16 pixels at a time where the CPU has it. */
static void deinterleave_4x8_scalar(const uint8_t *in, uint8_t *out, size_t pixels, size_t from) {
  uint8_t *o0 = out, *o1 = out + pixels, *o2 = out + 2 * pixels, *o3 = out + 3 * pixels;
  for (size_t p = from; p < pixels; p++) {
    o0[p] = in[4 * p];
    o1[p] = in[4 * p + 1];
    o2[p] = in[4 * p + 2];
    o3[p] = in[4 * p + 3];
  }
}

#if defined(__x86_64__) || defined(__i386__)
#include <tmmintrin.h>
__attribute__((target("ssse3"))) static size_t deinterleave_4x8_ssse3(const uint8_t *in, uint8_t *out, size_t pixels) {
  const __m128i by_sample = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  size_t p = 0;
  for (; p + 16 <= pixels; p += 16) {
    /* Each register: 4 pixels, regrouped as 4 bytes of sample 0, then of sample 1, 2, 3; then a 4x4 transpose. */
    __m128i a = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 4 * p)), by_sample);
    __m128i b = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 4 * p + 16)), by_sample);
    __m128i c = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 4 * p + 32)), by_sample);
    __m128i d = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(in + 4 * p + 48)), by_sample);
    __m128i ab_lo = _mm_unpacklo_epi32(a, b), ab_hi = _mm_unpackhi_epi32(a, b);
    __m128i cd_lo = _mm_unpacklo_epi32(c, d), cd_hi = _mm_unpackhi_epi32(c, d);
    _mm_storeu_si128((__m128i *)(out + p), _mm_unpacklo_epi64(ab_lo, cd_lo));
    _mm_storeu_si128((__m128i *)(out + pixels + p), _mm_unpackhi_epi64(ab_lo, cd_lo));
    _mm_storeu_si128((__m128i *)(out + 2 * pixels + p), _mm_unpacklo_epi64(ab_hi, cd_hi));
    _mm_storeu_si128((__m128i *)(out + 3 * pixels + p), _mm_unpackhi_epi64(ab_hi, cd_hi));
  }
  return p;
}
#endif

static void deinterleave_4x8(const uint8_t *in, uint8_t *out, size_t pixels) {
  size_t done = 0;
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("ssse3")) done = deinterleave_4x8_ssse3(in, out, pixels);
#endif
  deinterleave_4x8_scalar(in, out, pixels, done);
}

static napi_value deinterleave(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *src, *dst;
  size_t src_len, dst_len;
  uint32_t samples = 0, bytes_per_sample = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      !typed_bytes(env, argv[0], &src, &src_len) || !typed_bytes(env, argv[1], &dst, &dst_len) ||
      napi_get_value_uint32(env, argv[2], &samples) != napi_ok || napi_get_value_uint32(env, argv[3], &bytes_per_sample) != napi_ok ||
      samples == 0 || dst_len < src_len || (bytes_per_sample != 1 && bytes_per_sample != 2 && bytes_per_sample != 4 && bytes_per_sample != 8) ||
      ((uintptr_t)src | (uintptr_t)dst) % bytes_per_sample != 0) {
    napi_throw_type_error(env, NULL, "deinterleave(src: Uint8Array, dst: Uint8Array, samples: number, bytesPerSample: 1|2|4|8), aligned");
    return NULL;
  }
  size_t pixels = src_len / ((size_t)samples * bytes_per_sample);
  if (bytes_per_sample == 1 && samples == 4) {
    deinterleave_4x8((const uint8_t *)src, (uint8_t *)dst, pixels);
    return NULL;
  }
  switch (bytes_per_sample) {
    case 1: DEINTERLEAVE(uint8_t); break;
    case 2: DEINTERLEAVE(uint16_t); break;
    case 4: DEINTERLEAVE(uint32_t); break;
    default: DEINTERLEAVE(uint64_t); break;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "inflateInto", NAPI_AUTO_LENGTH, inflate_into, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "inflateInto", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "deinterleave", NAPI_AUTO_LENGTH, deinterleave, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "deinterleave", fn) != napi_ok) return NULL;
  return exports;
}
