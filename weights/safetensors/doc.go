// Package safetensors reads, validates and writes the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range, then
// the raw little-endian tensor data.
//
// The reader treats every file as hostile: the header length is checked
// against the file size and MaxHeaderLen before anything is allocated, the
// JSON is parsed by a small purpose-built scanner (bounded nesting, duplicate
// names rejected), and the byte ranges must tile the data section exactly,
// as the reference implementation requires. Tensor data is never read by
// ReadHeader: TensorInfo carries absolute file offsets, so a caller that
// already holds the bytes (a downloaded ArrayBuffer, an mmap) can slice them
// without a copy.
package safetensors
