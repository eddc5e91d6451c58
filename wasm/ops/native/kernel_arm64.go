package native

// On arm64 the SGEMM micro-kernel is NEON assembly (Advanced SIMD is part
// of every arm64 CPU, so there is nothing to detect). The elementwise ops
// keep their Go loops.

var neonKernel = gemmKernel{name: "neon", fn: kernelNEON, mr: 6, nr: 16, kc: 256, pack: packRowsGeneric(16)}

func init() { kernel = neonKernel }

// kern6x16NEON is the assembly micro-kernel (kernel_arm64.s), k >= 1.
//
//go:noescape
func kern6x16NEON(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32)

// kernelNEON checks the slice bounds the assembly relies on.
func kernelNEON(k int, a []float32, lda, astep int, b []float32, ldb int, c []float32, ldc int, pf *float32) {
	if k <= 0 {
		return
	}
	_ = a[(6-1)*lda+(k-1)*astep]
	_ = b[(k-1)*ldb+16-1]
	_ = c[(6-1)*ldc+16-1]
	kern6x16NEON(k, &a[0], lda, astep, &b[0], ldb, &c[0], ldc, pf)
}
