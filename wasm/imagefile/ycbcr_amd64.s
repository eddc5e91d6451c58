#include "textflag.h"

// func upsampleH2V2AVX2(near, far *byte, n int, out *byte)
//
// libjpeg's h2v2 fancy upsampling of chroma columns 1..n (n a multiple of
// 16) of the rows near and far (pointers at column 0): with
// s(c) = 3*near[c] + far[c], out[2(c-1)] = (3*s(c) + s(c-1) + 8) >> 4 and
// out[2(c-1)+1] = (3*s(c) + s(c+1) + 7) >> 4. Sums fit in 16 bits; each
// word even | odd<<8 is the output byte pair.
TEXT ·upsampleH2V2AVX2(SB), NOSPLIT, $0-32
	MOVQ near+0(FP), SI
	MOVQ far+8(FP), DX
	MOVQ n+16(FP), CX
	MOVQ out+24(FP), DI
	MOVL $0x00080008, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x00070007, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	TESTQ CX, CX
	JZ updone

uploop:
	VPMOVZXBW (SI), Y0
	VPMOVZXBW 1(SI), Y1
	VPMOVZXBW 2(SI), Y2
	VPMOVZXBW (DX), Y3
	VPMOVZXBW 1(DX), Y4
	VPMOVZXBW 2(DX), Y5
	VPADDW Y0, Y0, Y6
	VPADDW Y6, Y0, Y0
	VPADDW Y3, Y0, Y0 // s(c-1)
	VPADDW Y1, Y1, Y6
	VPADDW Y6, Y1, Y1
	VPADDW Y4, Y1, Y1 // s(c)
	VPADDW Y2, Y2, Y6
	VPADDW Y6, Y2, Y2
	VPADDW Y5, Y2, Y2 // s(c+1)
	VPADDW Y1, Y1, Y6
	VPADDW Y6, Y1, Y1 // 3*s(c)
	VPADDW Y1, Y0, Y0
	VPADDW Y15, Y0, Y0
	VPSRLW $4, Y0, Y0 // even
	VPADDW Y1, Y2, Y2
	VPADDW Y14, Y2, Y2
	VPSRLW $4, Y2, Y2 // odd
	VPSLLW $8, Y2, Y2
	VPOR Y2, Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ $16, SI
	ADDQ $16, DX
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ uploop

updone:
	VZEROUPPER
	RET

// func upsampleH2V1AVX2(row *byte, n int, out *byte)
//
// libjpeg's h2v1 fancy upsampling of chroma columns 1..n (n a multiple of
// 16) of row (pointer at column 0): out[2(c-1)] = (3*row[c] + row[c-1] + 1)
// >> 2 and out[2(c-1)+1] = (3*row[c] + row[c+1] + 2) >> 2.
TEXT ·upsampleH2V1AVX2(SB), NOSPLIT, $0-24
	MOVQ row+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x00020002, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	TESTQ CX, CX
	JZ h1done

h1loop:
	VPMOVZXBW (SI), Y0
	VPMOVZXBW 1(SI), Y1
	VPMOVZXBW 2(SI), Y2
	VPADDW Y1, Y1, Y6
	VPADDW Y6, Y1, Y1 // 3*row[c]
	VPADDW Y1, Y0, Y0
	VPADDW Y15, Y0, Y0
	VPSRLW $2, Y0, Y0 // even
	VPADDW Y1, Y2, Y2
	VPADDW Y14, Y2, Y2
	VPSRLW $2, Y2, Y2 // odd
	VPSLLW $8, Y2, Y2
	VPOR Y2, Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	SUBQ $16, CX
	JNZ h1loop

h1done:
	VZEROUPPER
	RET

// func jfifPackedAVX2(y, cb, cr *byte, n int, rb *int64, gr *byte)
//
// libjpeg's JFIF YCbCr -> RGB (16.16 fixed point, the same products and
// rounding as its tables) of n pixels (a multiple of 8), written as
// rb[i] = R | B<<32 and g[i] = G.
TEXT ·jfifPackedAVX2(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), SI
	MOVQ cb+8(FP), DX
	MOVQ cr+16(FP), R8
	MOVQ n+24(FP), CX
	MOVQ rb+32(FP), DI
	MOVQ gr+40(FP), R9
	MOVL $128, AX
	VMOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL $91881, AX // FIX(1.40200)
	VMOVD AX, X9
	VPBROADCASTD X9, Y9
	MOVL $116130, AX // FIX(1.77200)
	VMOVD AX, X10
	VPBROADCASTD X10, Y10
	MOVL $-22554, AX // -FIX(0.34414)
	VMOVD AX, X11
	VPBROADCASTD X11, Y11
	MOVL $-46802, AX // -FIX(0.71414)
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $32768, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $255, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	VPXOR Y15, Y15, Y15
	TESTQ CX, CX
	JZ jdone

jloop:
	VPMOVZXBD (SI), Y0
	VPMOVZXBD (DX), Y1
	VPMOVZXBD (R8), Y2
	VPSUBD Y8, Y1, Y1
	VPSUBD Y8, Y2, Y2
	VPMULLD Y9, Y2, Y3
	VPADDD Y13, Y3, Y3
	VPSRAD $16, Y3, Y3
	VPADDD Y0, Y3, Y3
	VPMAXSD Y15, Y3, Y3
	VPMINSD Y14, Y3, Y3 // R
	VPMULLD Y10, Y1, Y4
	VPADDD Y13, Y4, Y4
	VPSRAD $16, Y4, Y4
	VPADDD Y0, Y4, Y4
	VPMAXSD Y15, Y4, Y4
	VPMINSD Y14, Y4, Y4 // B
	VPMULLD Y11, Y1, Y5
	VPMULLD Y12, Y2, Y6
	VPADDD Y6, Y5, Y5
	VPADDD Y13, Y5, Y5
	VPSRAD $16, Y5, Y5
	VPADDD Y0, Y5, Y5 // G, clipped by the packs
	VPACKUSDW Y5, Y5, Y5
	VPACKUSWB Y5, Y5, Y5
	VEXTRACTI128 $1, Y5, X6
	VPUNPCKLDQ X6, X5, X5
	VMOVQ X5, (R9)
	VPUNPCKLDQ Y4, Y3, Y6
	VPUNPCKHDQ Y4, Y3, Y7
	VPERM2I128 $0x20, Y7, Y6, Y0
	VPERM2I128 $0x31, Y7, Y6, Y1
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	ADDQ $8, SI
	ADDQ $8, DX
	ADDQ $8, R8
	ADDQ $64, DI
	ADDQ $8, R9
	SUBQ $8, CX
	JNZ jloop

jdone:
	VZEROUPPER
	RET

// Byte shuffles for rgbaPackedAVX2 (per 128-bit lane): a pixel widened to
// a qword [r g b a 0 0 0 0] -> [r 0 0 0 b 0 0 0]; four pixels' greens to
// the lane's first dword.
DATA rbShuf<>+0(SB)/8, $0x8080800280808000
DATA rbShuf<>+8(SB)/8, $0x8080800A80808008
DATA rbShuf<>+16(SB)/8, $0x8080800280808000
DATA rbShuf<>+24(SB)/8, $0x8080800A80808008
GLOBL rbShuf<>(SB), RODATA|NOPTR, $32
DATA gShuf<>+0(SB)/8, $0x808080800D090501
DATA gShuf<>+8(SB)/8, $0x8080808080808080
DATA gShuf<>+16(SB)/8, $0x808080800D090501
DATA gShuf<>+24(SB)/8, $0x8080808080808080
GLOBL gShuf<>(SB), RODATA|NOPTR, $32

// func rgbaPackedAVX2(src *byte, n int, rb *int64, gr *byte) (opaque bool)
//
// Splits n RGBA pixels (n a multiple of 8) into rb[i] = R | B<<32 and
// g[i] = G, alpha ignored; opaque reports whether every alpha was 255.
TEXT ·rgbaPackedAVX2(SB), NOSPLIT, $0-33
	MOVQ src+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ rb+16(FP), DI
	MOVQ gr+24(FP), R9
	VMOVDQU rbShuf<>(SB), Y14
	VMOVDQU gShuf<>(SB), Y13
	VPCMPEQB Y15, Y15, Y15 // all ones: the AND of every pixel
	VMOVDQU Y15, Y12
	TESTQ CX, CX
	JZ rdone

rloop:
	VMOVDQU (SI), Y0
	VPAND Y0, Y15, Y15
	VPSHUFB Y13, Y0, Y3
	VEXTRACTI128 $1, Y3, X4
	VPUNPCKLDQ X4, X3, X3
	VMOVQ X3, (R9)
	VPMOVZXDQ X0, Y1
	VEXTRACTI128 $1, Y0, X2
	VPMOVZXDQ X2, Y2
	VPSHUFB Y14, Y1, Y1
	VPSHUFB Y14, Y2, Y2
	VMOVDQU Y1, (DI)
	VMOVDQU Y2, 32(DI)
	ADDQ $32, SI
	ADDQ $64, DI
	ADDQ $8, R9
	SUBQ $8, CX
	JNZ rloop

rdone:
	VPCMPEQB Y12, Y15, Y15
	VPMOVMSKB Y15, AX
	ANDL $0x88888888, AX
	CMPL AX, $0x88888888
	SETEQ opaque+32(FP)
	VZEROUPPER
	RET

// Per 128-bit lane, bytes [R0-3 G0-3 B0-3 B0-3] -> [R0 G0 B0 ... R3 G3 B3 _ _ _ _].
DATA rgbShuf<>+0(SB)/8, $0x0602090501080400
DATA rgbShuf<>+8(SB)/8, $0x808080800B07030A
DATA rgbShuf<>+16(SB)/8, $0x0602090501080400
DATA rgbShuf<>+24(SB)/8, $0x808080800B07030A
GLOBL rgbShuf<>(SB), RODATA|NOPTR, $32

// func jfifRGBAVX2(y, cb, cr *byte, n int, dst *byte)
//
// jfifPackedAVX2's conversion written as interleaved RGB: 24 bytes per 8
// pixels, each step storing 16 bytes twice (the last 4 of each store are
// overwritten by the next), so dst must have 4 bytes beyond 3*n.
TEXT ·jfifRGBAVX2(SB), NOSPLIT, $0-40
	MOVQ y+0(FP), SI
	MOVQ cb+8(FP), DX
	MOVQ cr+16(FP), R8
	MOVQ n+24(FP), CX
	MOVQ dst+32(FP), DI
	MOVL $128, AX
	VMOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL $91881, AX
	VMOVD AX, X9
	VPBROADCASTD X9, Y9
	MOVL $116130, AX
	VMOVD AX, X10
	VPBROADCASTD X10, Y10
	MOVL $-22554, AX
	VMOVD AX, X11
	VPBROADCASTD X11, Y11
	MOVL $-46802, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $32768, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	VMOVDQU rgbShuf<>(SB), Y14
	TESTQ CX, CX
	JZ cdone

cloop:
	VPMOVZXBD (SI), Y0
	VPMOVZXBD (DX), Y1
	VPMOVZXBD (R8), Y2
	VPSUBD Y8, Y1, Y1
	VPSUBD Y8, Y2, Y2
	VPMULLD Y9, Y2, Y3
	VPADDD Y13, Y3, Y3
	VPSRAD $16, Y3, Y3
	VPADDD Y0, Y3, Y3 // R
	VPMULLD Y10, Y1, Y4
	VPADDD Y13, Y4, Y4
	VPSRAD $16, Y4, Y4
	VPADDD Y0, Y4, Y4 // B
	VPMULLD Y11, Y1, Y5
	VPMULLD Y12, Y2, Y6
	VPADDD Y6, Y5, Y5
	VPADDD Y13, Y5, Y5
	VPSRAD $16, Y5, Y5
	VPADDD Y0, Y5, Y5 // G
	// Clipping by saturation: dwords -> unsigned words (negatives to 0),
	// words -> unsigned bytes (over 255 to 255).
	VPACKUSDW Y5, Y3, Y6 // R0-3 G0-3 | R4-7 G4-7
	VPACKUSDW Y4, Y4, Y7 // B0-3 B0-3 | B4-7 B4-7
	VPACKUSWB Y7, Y6, Y6 // R0-3 G0-3 B0-3 B0-3 | R4-7 ...
	VPSHUFB Y14, Y6, Y6
	VEXTRACTI128 $1, Y6, X7
	VMOVDQU X6, (DI)
	VMOVDQU X7, 12(DI)
	ADDQ $8, SI
	ADDQ $8, DX
	ADDQ $8, R8
	ADDQ $24, DI
	SUBQ $8, CX
	JNZ cloop

cdone:
	VZEROUPPER
	RET
