#include "textflag.h"

// func horizontalAVX2(rb *int64, gr *byte, mins *int32, krb *int32, kg *int32, n, kp int, out *byte)
//
// For each of n windows i: taps t = 0..kp-1 (kp a multiple of 8) of the
// packed line starting at mins[i]: R and B sums from rb (int32 lanes
// R,B,R,B,...) times krb (each tap's weight twice), the G sum from g
// (bytes widened to int32) times kg; then Pillow's bias, >> 22, clip to
// 0..255 (packs with saturation), three bytes out. int32 lanes wrap like
// the scalar sums, which never leave int32 for real weights.
TEXT ·horizontalAVX2(SB), NOSPLIT, $0-64
	MOVQ rb+0(FP), R8
	MOVQ gr+8(FP), R9
	MOVQ mins+16(FP), R10
	MOVQ krb+24(FP), SI
	MOVQ kg+32(FP), DX
	MOVQ n+40(FP), CX
	MOVQ kp+48(FP), R11
	MOVQ out+56(FP), DI
	SHRQ $3, R11           // 8-tap steps per window
	MOVL $0x200000, AX     // 1 << (precisionBits-1)
	VMOVD AX, X7
	VPBROADCASTD X7, X7
	TESTQ CX, CX
	JZ done

window:
	MOVLQSX (R10), AX
	LEAQ (R8)(AX*8), R12   // rb + min
	LEAQ (R9)(AX*1), R13   // g + min
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	MOVQ R11, BX

taps:
	VMOVDQU (R12), Y3
	VPMULLD (SI), Y3, Y3
	VPADDD Y3, Y0, Y0
	VMOVDQU 32(R12), Y4
	VPMULLD 32(SI), Y4, Y4
	VPADDD Y4, Y1, Y1
	VPMOVZXBD (R13), Y5
	VPMULLD (DX), Y5, Y5
	VPADDD Y5, Y2, Y2
	ADDQ $64, R12
	ADDQ $64, SI
	ADDQ $8, R13
	ADDQ $32, DX
	DECQ BX
	JNZ taps

	// R,B lanes of Y0+Y1 and the G lanes of Y2 summed to [R, G, B, _].
	VPADDD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0          // R B R B
	VPSHUFD $0x4E, X0, X1
	VPADDD X1, X0, X0          // R B R B (each the total)
	VEXTRACTI128 $1, Y2, X3
	VPADDD X3, X2, X2          // G G G G
	VPSHUFD $0x4E, X2, X3
	VPADDD X3, X2, X2
	VPSHUFD $0xB1, X2, X3
	VPADDD X3, X2, X2          // G total in every lane
	VPUNPCKLDQ X2, X0, X0      // R G B G
	VPADDD X7, X0, X0
	VPSRAD $22, X0, X0
	VPACKSSDW X0, X0, X0
	VPACKUSWB X0, X0, X0
	VMOVD X0, AX
	MOVW AX, (DI)
	SHRL $16, AX
	MOVB AX, 2(DI)

	ADDQ $4, R10
	ADDQ $3, DI
	DECQ CX
	JNZ window

done:
	VZEROUPPER
	RET

// Dword order that undoes the lane interleaving of the two packs below.
DATA packOrder<>+0(SB)/4, $0
DATA packOrder<>+4(SB)/4, $4
DATA packOrder<>+8(SB)/4, $1
DATA packOrder<>+12(SB)/4, $5
DATA packOrder<>+16(SB)/4, $2
DATA packOrder<>+20(SB)/4, $6
DATA packOrder<>+24(SB)/4, $3
DATA packOrder<>+28(SB)/4, $7
GLOBL packOrder<>(SB), RODATA|NOPTR, $32

// func verticalAVX2(rows *byte, stride int, k *int32, nk, n int, out *byte)
//
// One output row of the vertical pass: out[i] = clip8(bias + sum over the
// nk taps j of rows[j*stride + i] * k[j]) for i < n (a multiple of 32),
// 32 columns at a time in four int32 accumulators.
TEXT ·verticalAVX2(SB), NOSPLIT, $0-48
	MOVQ rows+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ k+16(FP), R10
	MOVQ nk+24(FP), R11
	MOVQ n+32(FP), CX
	MOVQ out+40(FP), DI
	MOVL $0x200000, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU packOrder<>(SB), Y14
	TESTQ CX, CX
	JZ vdone
	TESTQ R11, R11
	JZ vdone

vchunk:
	VMOVDQA Y15, Y0
	VMOVDQA Y15, Y1
	VMOVDQA Y15, Y2
	VMOVDQA Y15, Y3
	MOVQ SI, R12
	MOVQ R10, R13
	MOVQ R11, BX

vtap:
	VPBROADCASTD (R13), Y4
	VPMOVZXBD (R12), Y5
	VPMULLD Y4, Y5, Y5
	VPADDD Y5, Y0, Y0
	VPMOVZXBD 8(R12), Y6
	VPMULLD Y4, Y6, Y6
	VPADDD Y6, Y1, Y1
	VPMOVZXBD 16(R12), Y7
	VPMULLD Y4, Y7, Y7
	VPADDD Y7, Y2, Y2
	VPMOVZXBD 24(R12), Y8
	VPMULLD Y4, Y8, Y8
	VPADDD Y8, Y3, Y3
	ADDQ R8, R12
	ADDQ $4, R13
	DECQ BX
	JNZ vtap

	VPSRAD $22, Y0, Y0
	VPSRAD $22, Y1, Y1
	VPSRAD $22, Y2, Y2
	VPSRAD $22, Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKUSWB Y2, Y0, Y0
	VPERMD Y0, Y14, Y0
	VMOVDQU Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $32, CX
	JNZ vchunk

vdone:
	VZEROUPPER
	RET
