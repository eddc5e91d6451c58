package imagefile

import "golang.org/x/sys/cpu"

// hasAVX2 selects the AVX2 chroma upsampling and JPEG colour conversion
// (ycbcr_amd64.s); the Go loops stay the reference and the path elsewhere.
var hasAVX2 = cpu.X86.HasAVX2

//go:noescape
func upsampleH2V2AVX2(near, far *byte, n int, out *byte)

//go:noescape
func jfifPackedAVX2(y, cb, cr *byte, n int, rb *int64, gr *byte)

// upsampleH2V2 writes the h2v2 pairs of chroma columns 1..n of near/far
// (slices starting one column left of the first) to out; n a multiple of 16.
func upsampleH2V2(near, far []byte, n int, out []byte) {
	_, _, _ = near[n+1], far[n+1], out[2*n-1]
	upsampleH2V2AVX2(&near[0], &far[0], n, &out[0])
}

// jfifPacked converts len(ys) &^ 7 pixels and returns how many.
func jfifPacked(ys, cbs, crs []byte, rb []int64, g []byte) int {
	n := len(ys) &^ 7
	if n == 0 {
		return 0
	}
	_, _, _, _, _ = cbs[n-1], crs[n-1], rb[n-1], g[n-1], ys[n-1]
	jfifPackedAVX2(&ys[0], &cbs[0], &crs[0], n, &rb[0], &g[0])
	return n
}

//go:noescape
func rgbaPackedAVX2(src *byte, n int, rb *int64, gr *byte) (opaque bool)

// rgbaPacked splits the first len(rb) &^ 7 RGBA pixels of src into rb and
// g, alpha ignored, and returns how many and whether all were opaque.
func rgbaPacked(src []byte, rb []int64, g []byte) (int, bool) {
	n := len(rb) &^ 7
	if n == 0 {
		return 0, true
	}
	_, _, _ = src[4*n-1], rb[n-1], g[n-1]
	return n, rgbaPackedAVX2(&src[0], n, &rb[0], &g[0])
}

//go:noescape
func jfifRGBAVX2(y, cb, cr *byte, n int, dst *byte)

// jfifRGB converts the first pixels of ys/cbs/crs to interleaved RGB in
// dst, in steps of 8 while dst has the 4 spare bytes the kernel's stores
// need, and returns how many.
func jfifRGB(ys, cbs, crs, dst []byte) int {
	n := min(len(ys), (len(dst)-4)/3) &^ 7
	if n <= 0 {
		return 0
	}
	_, _, _, _ = ys[n-1], cbs[n-1], crs[n-1], dst[3*n+3]
	jfifRGBAVX2(&ys[0], &cbs[0], &crs[0], n, &dst[0])
	return n
}

//go:noescape
func upsampleH2V1AVX2(row *byte, n int, out *byte)

// upsampleH2V1 writes the h2v1 pairs of chroma columns 1..n of row (a
// slice starting one column left of the first) to out; n a multiple of 16.
func upsampleH2V1(row []byte, n int, out []byte) {
	_, _ = row[n+1], out[2*n-1]
	upsampleH2V1AVX2(&row[0], n, &out[0])
}
