package native

import "golang.org/x/sys/cpu"

var (
	// hasAVX2FMA reports whether the AVX2+FMA micro-kernel can run here.
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	// hasAVX512 reports whether the AVX-512 micro-kernel can run here.
	hasAVX512 = cpu.X86.HasAVX512F

	stripsAVX2   = checkedStrips(6, kern6x16AVX2S)
	stripsAVX2x5 = checkedStrips(5, kern5x16AVX2S)
	avx2Kernel   = gemmKernel{name: "avx2", fn: oneStrip(stripsAVX2), strips: stripsAVX2, mr: 6, nr: 16, kc: 256, pack: packRows16}
	avx2Kernel5  = gemmKernel{name: "avx2-5x16", fn: oneStrip(stripsAVX2x5), strips: stripsAVX2x5, mr: 5, nr: 16, kc: 256, pack: packRows16}
	avx512Kernel = gemmKernel{name: "avx512", fn: kernelAVX512, mr: 10, nr: 32, kc: 192, pack: packRows32}
)

func init() {
	avx2Kernel.alt = &avx2Kernel5
	switch {
	case hasAVX512:
		kernel = avx512Kernel
	case hasAVX2FMA:
		kernel = avx2Kernel
	}
	switch {
	case hasAVX512:
		sigmoidVec = sigmoid16
		expShiftVec = expShift16
	case hasAVX2FMA:
		sigmoidVec = sigmoid8
		expShiftVec = expShift8
	}
	if cpu.X86.HasAVX {
		vecVV, vecVS, vecSV, vecSum = binVVAsm, binVSAsm, binSVAsm, sumAsm
	}
}

// sigmoidAVX512 computes 1/(1+exp(-x)) 16 lanes at a time; n must be a
// multiple of 16.
//
//go:noescape
func sigmoidAVX512(n int, src, dst *float32)

// expShiftAVX512 writes dst[i] = exp(src[i]-shift) and returns their sum;
// n must be a multiple of 16.
//
//go:noescape
func expShiftAVX512(n int, src, dst *float32, shift float32) float32

func expShift16(dst, src []float32, shift float32) (float32, int) {
	n := len(src) &^ 15
	if n == 0 {
		return 0, 0
	}
	_ = dst[n-1]
	return expShiftAVX512(n, &src[0], &dst[0], shift), n
}

// sigmoid16 handles the multiple-of-16 prefix in assembly and returns how
// many elements it did.
func sigmoid16(dst, src []float32) int {
	n := len(src) &^ 15
	if n > 0 {
		_ = dst[n-1]
		sigmoidAVX512(n, &src[0], &dst[0])
	}
	return n
}

// sigmoidAVX2 and expShiftAVX2 are the 8-lane (AVX2+FMA) versions of the
// above, for CPUs without AVX-512; n must be a multiple of 8.
//
//go:noescape
func sigmoidAVX2(n int, src, dst *float32)

//go:noescape
func expShiftAVX2(n int, src, dst *float32, shift float32) float32

func expShift8(dst, src []float32, shift float32) (float32, int) {
	n := len(src) &^ 7
	if n == 0 {
		return 0, 0
	}
	_ = dst[n-1]
	return expShiftAVX2(n, &src[0], &dst[0], shift), n
}

func sigmoid8(dst, src []float32) int {
	n := len(src) &^ 7
	if n > 0 {
		_ = dst[n-1]
		sigmoidAVX2(n, &src[0], &dst[0])
	}
	return n
}

// kern6x16AVX2S and kern10x32AVX512 are the assembly micro-kernels
// (gemm_amd64.s): a 6x16 tile in 12 YMM accumulators, or a 10x32 tile in 20
// ZMM accumulators (twice the FMA width on CPUs with 512-bit units).
// kern5x16AVX2S is the 6x16 kernel less a row, for row counts that 5
// divides and 6 does not (50 tokens: ViT-B/32 at batch 1), where 6-row
// strips would compute 54 rows. The AVX2 ones run over strips consecutive
// row strips (A at a+s*astride, C at c+s*cstride, in floats) with one B
// panel: one call per panel and k-block instead of one per strip (the
// per-call cost was ~4 % of a ViT forward).
//
//go:noescape
func kern6x16AVX2S(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32, strips, astride, cstride int, bias *float32)

//go:noescape
func kern5x16AVX2S(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32, strips, astride, cstride int, bias *float32)

//go:noescape
func kern10x32AVX512(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32)

// asmStrips is the signature of the AVX2 strips kernels above.
type asmStrips func(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32, strips, astride, cstride int, bias *float32)

// checkedStrips and kernelAVX512 check the slice bounds the assembly
// relies on, so a driver bug panics instead of touching memory it does not
// own. Prefetches never fault, so pf needs only be a valid pointer.
// checkedStrips gives the strips kernel of an mr-row assembly kernel (and
// its bias row, when set: C = bias + the sum).
func checkedStrips(mr int, kern asmStrips) stripsKernel {
	return func(k int, a []float32, lda, astep int, b []float32, ldb int, c []float32, ldc int, pf *float32, strips, astride, cstride int, bias []float32) {
		if k <= 0 || strips <= 0 {
			return
		}
		_ = a[(strips-1)*astride+(mr-1)*lda+(k-1)*astep]
		_ = b[(k-1)*ldb+16-1]
		_ = c[(strips-1)*cstride+(mr-1)*ldc+16-1]
		if pf == nil {
			pf = &b[0]
		}
		var bp *float32
		if bias != nil {
			bp = &bias[:16][0]
		}
		kern(k, &a[0], lda, astep, &b[0], ldb, &c[0], ldc, pf, strips, astride, cstride, bp)
	}
}

// oneStrip is a strips kernel as a micro-kernel: one strip, accumulated
// into C.
func oneStrip(strips stripsKernel) microKernel {
	return func(k int, a []float32, lda, astep int, b []float32, ldb int, c []float32, ldc int, pf *float32) {
		strips(k, a, lda, astep, b, ldb, c, ldc, pf, 1, 0, 0, nil)
	}
}

func kernelAVX512(k int, a []float32, lda, astep int, b []float32, ldb int, c []float32, ldc int, pf *float32) {
	if k <= 0 {
		return
	}
	_ = a[(10-1)*lda+(k-1)*astep]
	_ = b[(k-1)*ldb+32-1]
	_ = c[(10-1)*ldc+32-1]
	if pf == nil {
		pf = &b[0]
	}
	kern10x32AVX512(k, &a[0], lda, astep, &b[0], ldb, &c[0], ldc, pf)
}

// packRows16AVX and packRows32AVX512 copy k rows of 16 / 32 floats from a
// source with row stride ld (floats) to a contiguous panel.
//
//go:noescape
func packRows16AVX(k int, src *float32, ld int, dst *float32)

//go:noescape
func packRows32AVX512(k int, src *float32, ld int, dst *float32)

func packRows16(k int, src []float32, ld int, dst []float32) {
	if k <= 0 {
		return
	}
	_ = src[(k-1)*ld+16-1]
	_ = dst[k*16-1]
	packRows16AVX(k, &src[0], ld, &dst[0])
}

func packRows32(k int, src []float32, ld int, dst []float32) {
	if k <= 0 {
		return
	}
	_ = src[(k-1)*ld+32-1]
	_ = dst[k*32-1]
	packRows32AVX512(k, &src[0], ld, &dst[0])
}

// Elementwise assembly (kernel_amd64.s); n is a multiple of 16.

//go:noescape
func addVVAVX(n int, dst, a, b *float32)

//go:noescape
func subVVAVX(n int, dst, a, b *float32)

//go:noescape
func mulVVAVX(n int, dst, a, b *float32)

//go:noescape
func addVSAVX(n int, dst, a *float32, s float32)

//go:noescape
func subVSAVX(n int, dst, a *float32, s float32)

//go:noescape
func mulVSAVX(n int, dst, a *float32, s float32)

//go:noescape
func subSVAVX(n int, dst *float32, s float32, b *float32)

//go:noescape
func sumAVX(n int, a *float32) float32

// binVVAsm, binVSAsm and binSVAsm do the multiple-of-16 prefix of the
// elementwise loops in assembly and return its length.
func binVVAsm(op binOp, dst, a, b []float32) int {
	n := len(dst) &^ 15
	if n == 0 {
		return 0
	}
	_, _ = a[n-1], b[n-1]
	switch op {
	case opAdd:
		addVVAVX(n, &dst[0], &a[0], &b[0])
	case opSub:
		subVVAVX(n, &dst[0], &a[0], &b[0])
	case opMul:
		mulVVAVX(n, &dst[0], &a[0], &b[0])
	}
	return n
}

func binVSAsm(op binOp, dst, a []float32, s float32) int {
	n := len(dst) &^ 15
	if n == 0 {
		return 0
	}
	_ = a[n-1]
	switch op {
	case opAdd:
		addVSAVX(n, &dst[0], &a[0], s)
	case opSub:
		subVSAVX(n, &dst[0], &a[0], s)
	case opMul:
		mulVSAVX(n, &dst[0], &a[0], s)
	}
	return n
}

func binSVAsm(op binOp, dst []float32, s float32, b []float32) int {
	n := len(dst) &^ 15
	if n == 0 {
		return 0
	}
	_ = b[n-1]
	switch op {
	case opAdd:
		addVSAVX(n, &dst[0], &b[0], s)
	case opSub:
		subSVAVX(n, &dst[0], s, &b[0])
	case opMul:
		mulVSAVX(n, &dst[0], &b[0], s)
	}
	return n
}

// sumAsm sums the multiple-of-16 prefix of a; it returns the sum and the
// prefix length.
func sumAsm(a []float32) (float32, int) {
	n := len(a) &^ 15
	if n == 0 {
		return 0, 0
	}
	return sumAVX(n, &a[0]), n
}
