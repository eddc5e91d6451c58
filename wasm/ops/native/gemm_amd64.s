#include "textflag.h"

// SGEMM micro-kernels (see gemm.go). The AVX2 and AVX-512 versions have
// the same body and differ in tile shape and registers; the AVX2 ones also
// loop over several row strips.

// func kern10x32AVX512(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32)
//
// C[r][j] += sum_p A[r*lda+p*astep] * B[p*ldb+j] for r < 10, j < 32, k >= 1.
// A is either packed (lda 1, astep 10) or read in place from row-major
// storage (lda = row length, astep 1). Each k step also prefetches row p of
// the panel at pf (row stride ldb): the next panel of an in-place B.
// Accumulators: Z4..Z23 (row r in 2 consecutive
// registers); Z0..Z1 = B row; Z2.. = broadcasts of A.
TEXT ·kern10x32AVX512(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ astep+24(FP), R12
	SHLQ $2, R12
	MOVQ b+32(FP), DI
	MOVQ ldb+40(FP), R8
	SHLQ $2, R8
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R9
	SHLQ $2, R9
	MOVQ pf+64(FP), R11
	LEAQ (SI)(R10*2), R13
	ADDQ R10, R13 // R13 = row 3
	LEAQ (R13)(R10*2), BX // BX = row 5
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23

loop_kern10x32AVX512:
	VMOVUPS      (DI), Z0
	VMOVUPS      64(DI), Z1
	PREFETCHT0   (R11)
	PREFETCHT0   64(R11)
	VBROADCASTSS (SI), Z2
	VFMADD231PS  Z0, Z2, Z4
	VFMADD231PS  Z1, Z2, Z5
	VBROADCASTSS (SI)(R10*1), Z3
	VFMADD231PS  Z0, Z3, Z6
	VFMADD231PS  Z1, Z3, Z7
	VBROADCASTSS (SI)(R10*2), Z2
	VFMADD231PS  Z0, Z2, Z8
	VFMADD231PS  Z1, Z2, Z9
	VBROADCASTSS (R13), Z3
	VFMADD231PS  Z0, Z3, Z10
	VFMADD231PS  Z1, Z3, Z11
	VBROADCASTSS (SI)(R10*4), Z2
	VFMADD231PS  Z0, Z2, Z12
	VFMADD231PS  Z1, Z2, Z13
	VBROADCASTSS (BX), Z3
	VFMADD231PS  Z0, Z3, Z14
	VFMADD231PS  Z1, Z3, Z15
	VBROADCASTSS (BX)(R10*1), Z2
	VFMADD231PS  Z0, Z2, Z16
	VFMADD231PS  Z1, Z2, Z17
	VBROADCASTSS (R13)(R10*4), Z3
	VFMADD231PS  Z0, Z3, Z18
	VFMADD231PS  Z1, Z3, Z19
	VBROADCASTSS (SI)(R10*8), Z2
	VFMADD231PS  Z0, Z2, Z20
	VFMADD231PS  Z1, Z2, Z21
	VBROADCASTSS (BX)(R10*4), Z3
	VFMADD231PS  Z0, Z3, Z22
	VFMADD231PS  Z1, Z3, Z23
	ADDQ         R8, DI
	ADDQ         R8, R11
	ADDQ         R12, SI
	ADDQ         R12, R13
	ADDQ         R12, BX
	DECQ         CX
	JNZ          loop_kern10x32AVX512

	VADDPS  (DX), Z4, Z4
	VMOVUPS Z4, (DX)
	VADDPS  64(DX), Z5, Z5
	VMOVUPS Z5, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z6, Z6
	VMOVUPS Z6, (DX)
	VADDPS  64(DX), Z7, Z7
	VMOVUPS Z7, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z8, Z8
	VMOVUPS Z8, (DX)
	VADDPS  64(DX), Z9, Z9
	VMOVUPS Z9, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z10, Z10
	VMOVUPS Z10, (DX)
	VADDPS  64(DX), Z11, Z11
	VMOVUPS Z11, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z12, Z12
	VMOVUPS Z12, (DX)
	VADDPS  64(DX), Z13, Z13
	VMOVUPS Z13, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z14, Z14
	VMOVUPS Z14, (DX)
	VADDPS  64(DX), Z15, Z15
	VMOVUPS Z15, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z16, Z16
	VMOVUPS Z16, (DX)
	VADDPS  64(DX), Z17, Z17
	VMOVUPS Z17, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z18, Z18
	VMOVUPS Z18, (DX)
	VADDPS  64(DX), Z19, Z19
	VMOVUPS Z19, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z20, Z20
	VMOVUPS Z20, (DX)
	VADDPS  64(DX), Z21, Z21
	VMOVUPS Z21, 64(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Z22, Z22
	VMOVUPS Z22, (DX)
	VADDPS  64(DX), Z23, Z23
	VMOVUPS Z23, 64(DX)
	VZEROUPPER
	RET

// func kern6x16AVX2S(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32, strips, astride, cstride int, bias *float32)
//
// For s < strips, r < 6, j < 16, k >= 1, with A' = a+s*astride and C' =
// c+s*cstride (strides in floats): C'[r*ldc+j] += sum_p A'[r*lda+p*astep] *
// B[p*ldb+j]. A is either packed (lda 1, astep 6) or read in place from
// row-major storage (lda = row length, astep 1). Each k step also
// prefetches row p of the panel at pf (row stride ldb), the next panel,
// into L2 (PREFETCHT1: into L1 it evicted the panel in use; see
// RATIONALE.md). All strips share the B panel: one call per panel and k-block. When bias
// is not nil (the first k-block), C' is not read: C'[r*ldc+j] = bias[j] +
// the sum.
// Accumulators: Y4..Y15 (row r in 2 consecutive registers); Y0..Y1 = B row;
// Y2.. = broadcasts of A.
TEXT ·kern6x16AVX2S(SB), NOSPLIT, $0-104
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ astep+24(FP), R12
	SHLQ $2, R12
	MOVQ ldb+40(FP), R8
	SHLQ $2, R8
	MOVQ ldc+56(FP), R9
	SHLQ $2, R9
	MOVQ a+8(FP), AX
	MOVQ c+48(FP), BX
	MOVQ strips+72(FP), R14
	MOVQ astride+80(FP), R15
	SHLQ $2, R15

strip_kern6x16AVX2S:
	MOVQ k+0(FP), CX
	MOVQ AX, SI
	MOVQ b+32(FP), DI
	MOVQ BX, DX
	MOVQ pf+64(FP), R11
	LEAQ (SI)(R10*2), R13
	ADDQ R10, R13 // R13 = row 3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15

loop_kern6x16AVX2S:
	VMOVUPS      (DI), Y0
	VMOVUPS      32(DI), Y1
	PREFETCHT1   (R11)
	VBROADCASTSS (SI), Y2
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VBROADCASTSS (SI)(R10*1), Y3
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS (SI)(R10*2), Y2
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VBROADCASTSS (R13), Y3
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS (SI)(R10*4), Y2
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	VBROADCASTSS (R13)(R10*2), Y3
	VFMADD231PS  Y0, Y3, Y14
	VFMADD231PS  Y1, Y3, Y15
	ADDQ         R8, DI
	ADDQ         R8, R11
	ADDQ         R12, SI
	ADDQ         R12, R13
	DECQ         CX
	JNZ          loop_kern6x16AVX2S

	MOVQ bias+96(FP), R11
	TESTQ R11, R11
	JNZ  set_kern6x16AVX2S
	VADDPS  (DX), Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS  32(DX), Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS  32(DX), Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS  32(DX), Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS  32(DX), Y11, Y11
	VMOVUPS Y11, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y12, Y12
	VMOVUPS Y12, (DX)
	VADDPS  32(DX), Y13, Y13
	VMOVUPS Y13, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y14, Y14
	VMOVUPS Y14, (DX)
	VADDPS  32(DX), Y15, Y15
	VMOVUPS Y15, 32(DX)
	JMP  next_kern6x16AVX2S

set_kern6x16AVX2S:
	VADDPS  (R11), Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS  32(R11), Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS  32(R11), Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS  32(R11), Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS  32(R11), Y11, Y11
	VMOVUPS Y11, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y12, Y12
	VMOVUPS Y12, (DX)
	VADDPS  32(R11), Y13, Y13
	VMOVUPS Y13, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y14, Y14
	VMOVUPS Y14, (DX)
	VADDPS  32(R11), Y15, Y15
	VMOVUPS Y15, 32(DX)

next_kern6x16AVX2S:
	ADDQ R15, AX
	MOVQ cstride+88(FP), DX
	LEAQ (BX)(DX*4), BX
	DECQ R14
	JNZ  strip_kern6x16AVX2S
	VZEROUPPER
	RET

// func kern5x16AVX2S(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32, strips, astride, cstride int, bias *float32)
//
// For s < strips, r < 5, j < 16, k >= 1, with A' = a+s*astride and C' =
// c+s*cstride (strides in floats): C'[r*ldc+j] += sum_p A'[r*lda+p*astep] *
// B[p*ldb+j]. A is either packed (lda 1, astep 5) or read in place from
// row-major storage (lda = row length, astep 1). Each k step also
// prefetches row p of the panel at pf (row stride ldb), the next panel,
// into L2 (PREFETCHT1: into L1 it evicted the panel in use; see
// RATIONALE.md). All strips share the B panel: one call per panel and k-block. When bias
// is not nil (the first k-block), C' is not read: C'[r*ldc+j] = bias[j] +
// the sum.
// Accumulators: Y4..Y13 (row r in 2 consecutive registers); Y0..Y1 = B row;
// Y2.. = broadcasts of A.
TEXT ·kern5x16AVX2S(SB), NOSPLIT, $0-104
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ astep+24(FP), R12
	SHLQ $2, R12
	MOVQ ldb+40(FP), R8
	SHLQ $2, R8
	MOVQ ldc+56(FP), R9
	SHLQ $2, R9
	MOVQ a+8(FP), AX
	MOVQ c+48(FP), BX
	MOVQ strips+72(FP), R14
	MOVQ astride+80(FP), R15
	SHLQ $2, R15

strip_kern5x16AVX2S:
	MOVQ k+0(FP), CX
	MOVQ AX, SI
	MOVQ b+32(FP), DI
	MOVQ BX, DX
	MOVQ pf+64(FP), R11
	LEAQ (SI)(R10*2), R13
	ADDQ R10, R13 // R13 = row 3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13

loop_kern5x16AVX2S:
	VMOVUPS      (DI), Y0
	VMOVUPS      32(DI), Y1
	PREFETCHT1   (R11)
	VBROADCASTSS (SI), Y2
	VFMADD231PS  Y0, Y2, Y4
	VFMADD231PS  Y1, Y2, Y5
	VBROADCASTSS (SI)(R10*1), Y3
	VFMADD231PS  Y0, Y3, Y6
	VFMADD231PS  Y1, Y3, Y7
	VBROADCASTSS (SI)(R10*2), Y2
	VFMADD231PS  Y0, Y2, Y8
	VFMADD231PS  Y1, Y2, Y9
	VBROADCASTSS (R13), Y3
	VFMADD231PS  Y0, Y3, Y10
	VFMADD231PS  Y1, Y3, Y11
	VBROADCASTSS (SI)(R10*4), Y2
	VFMADD231PS  Y0, Y2, Y12
	VFMADD231PS  Y1, Y2, Y13
	ADDQ         R8, DI
	ADDQ         R8, R11
	ADDQ         R12, SI
	ADDQ         R12, R13
	DECQ         CX
	JNZ          loop_kern5x16AVX2S

	MOVQ bias+96(FP), R11
	TESTQ R11, R11
	JNZ  set_kern5x16AVX2S
	VADDPS  (DX), Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS  32(DX), Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS  32(DX), Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS  32(DX), Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS  32(DX), Y11, Y11
	VMOVUPS Y11, 32(DX)
	ADDQ    R9, DX
	VADDPS  (DX), Y12, Y12
	VMOVUPS Y12, (DX)
	VADDPS  32(DX), Y13, Y13
	VMOVUPS Y13, 32(DX)
	JMP  next_kern5x16AVX2S

set_kern5x16AVX2S:
	VADDPS  (R11), Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS  32(R11), Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS  32(R11), Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS  32(R11), Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS  32(R11), Y11, Y11
	VMOVUPS Y11, 32(DX)
	ADDQ    R9, DX
	VADDPS  (R11), Y12, Y12
	VMOVUPS Y12, (DX)
	VADDPS  32(R11), Y13, Y13
	VMOVUPS Y13, 32(DX)

next_kern5x16AVX2S:
	ADDQ R15, AX
	MOVQ cstride+88(FP), DX
	LEAQ (BX)(DX*4), BX
	DECQ R14
	JNZ  strip_kern5x16AVX2S
	VZEROUPPER
	RET
