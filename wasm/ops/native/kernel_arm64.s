#include "textflag.h"

// func kern6x16NEON(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, pf *float32)
//
// C[r][j] += sum_p A[r*lda+p*astep] * B[p*ldb+j] for r < 6, j < 16, k >= 1
// (pf is not used). The C tile is loaded into the 24 accumulators V8..V31
// (row r in V(8+4r)..V(11+4r)) and stored back at the end, so no vector add
// is needed (Go's arm64 assembler has no VFADD). Per k step: one 16-float
// row of B in V0..V3, six LD1R broadcasts of A (one pointer per row,
// post-incremented by astep), 24 FMLA.
TEXT ·kern6x16NEON(SB), NOSPLIT, $0-72
	MOVD k+0(FP), R0
	MOVD a+8(FP), R1
	MOVD lda+16(FP), R6
	LSL  $2, R6, R6
	MOVD astep+24(FP), R12
	LSL  $2, R12, R12
	MOVD b+32(FP), R2
	MOVD ldb+40(FP), R3
	LSL  $2, R3, R3
	MOVD c+48(FP), R4
	MOVD ldc+56(FP), R5
	LSL  $2, R5, R5
	ADD  R6, R1, R7
	ADD  R6, R7, R8
	ADD  R6, R8, R9
	ADD  R6, R9, R10
	ADD  R6, R10, R11

	MOVD R4, R6
	VLD1 (R6), [V8.S4, V9.S4, V10.S4, V11.S4]
	ADD  R5, R6, R6
	VLD1 (R6), [V12.S4, V13.S4, V14.S4, V15.S4]
	ADD  R5, R6, R6
	VLD1 (R6), [V16.S4, V17.S4, V18.S4, V19.S4]
	ADD  R5, R6, R6
	VLD1 (R6), [V20.S4, V21.S4, V22.S4, V23.S4]
	ADD  R5, R6, R6
	VLD1 (R6), [V24.S4, V25.S4, V26.S4, V27.S4]
	ADD  R5, R6, R6
	VLD1 (R6), [V28.S4, V29.S4, V30.S4, V31.S4]

loop:
	VLD1 (R2), [V0.S4, V1.S4, V2.S4, V3.S4]
	ADD  R3, R2, R2
	VLD1R.P (R1)(R12), [V4.S4]
	VFMLA V0.S4, V4.S4, V8.S4
	VFMLA V1.S4, V4.S4, V9.S4
	VFMLA V2.S4, V4.S4, V10.S4
	VFMLA V3.S4, V4.S4, V11.S4
	VLD1R.P (R7)(R12), [V5.S4]
	VFMLA V0.S4, V5.S4, V12.S4
	VFMLA V1.S4, V5.S4, V13.S4
	VFMLA V2.S4, V5.S4, V14.S4
	VFMLA V3.S4, V5.S4, V15.S4
	VLD1R.P (R8)(R12), [V6.S4]
	VFMLA V0.S4, V6.S4, V16.S4
	VFMLA V1.S4, V6.S4, V17.S4
	VFMLA V2.S4, V6.S4, V18.S4
	VFMLA V3.S4, V6.S4, V19.S4
	VLD1R.P (R9)(R12), [V7.S4]
	VFMLA V0.S4, V7.S4, V20.S4
	VFMLA V1.S4, V7.S4, V21.S4
	VFMLA V2.S4, V7.S4, V22.S4
	VFMLA V3.S4, V7.S4, V23.S4
	VLD1R.P (R10)(R12), [V4.S4]
	VFMLA V0.S4, V4.S4, V24.S4
	VFMLA V1.S4, V4.S4, V25.S4
	VFMLA V2.S4, V4.S4, V26.S4
	VFMLA V3.S4, V4.S4, V27.S4
	VLD1R.P (R11)(R12), [V5.S4]
	VFMLA V0.S4, V5.S4, V28.S4
	VFMLA V1.S4, V5.S4, V29.S4
	VFMLA V2.S4, V5.S4, V30.S4
	VFMLA V3.S4, V5.S4, V31.S4
	SUBS $1, R0, R0
	BNE  loop

	VST1 [V8.S4, V9.S4, V10.S4, V11.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V12.S4, V13.S4, V14.S4, V15.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V16.S4, V17.S4, V18.S4, V19.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V20.S4, V21.S4, V22.S4, V23.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V24.S4, V25.S4, V26.S4, V27.S4], (R4)
	ADD  R5, R4, R4
	VST1 [V28.S4, V29.S4, V30.S4, V31.S4], (R4)
	RET
