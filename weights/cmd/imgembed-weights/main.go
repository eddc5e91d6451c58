// Command imgembed-weights makes and inspects the safetensors checkpoints
// imgembed loads:
//
//	imgembed-weights synth --preset b32|b16|l14|tiny --seed N --dtype f32|f16|bf16 [--layers N] [--full] [--bare] --out FILE
//	imgembed-weights convert --in FILE [--config config.json] --dtype f32|f16|bf16|int8 [--group-size N] --out FILE
//	imgembed-weights inspect [--config config.json] FILE
//
// synth writes seeded random weights in the Hugging Face CLIP layout (real
// weights cannot be downloaded in CI); convert extracts the vision tower of a
// Hugging Face CLIP checkpoint, changes its dtype (int8: the matrix weights
// quantised per output channel, see weights.MetaQuant) and records the
// config in __metadata__; inspect prints the inferred config and the tensor table.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imgembed-weights:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `usage:
  imgembed-weights synth --preset b32|b16|l14|tiny --seed N --dtype f32|f16|bf16 [--layers N] [--full] [--bare] --out FILE
  imgembed-weights convert --in FILE [--config config.json] --dtype f32|f16|bf16|int8 [--group-size N] --out FILE
  imgembed-weights inspect [--config config.json] FILE`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("%w: no command", errUsage)
	}
	switch args[0] {
	case "synth":
		return synth(args[1:], stderr)
	case "convert":
		return convert(args[1:], stdout, stderr)
	case "inspect":
		return inspect(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseDType(s string) (safetensors.DType, error) {
	switch strings.ToLower(s) {
	case "f32", "float32":
		return safetensors.F32, nil
	case "f16", "float16", "half":
		return safetensors.F16, nil
	case "bf16", "bfloat16":
		return safetensors.BF16, nil
	}
	return "", fmt.Errorf("%w: --dtype %q (want f32, f16 or bf16)", errUsage, s)
}

func synth(args []string, stderr io.Writer) error {
	fs := newFlags("synth", stderr)
	preset := fs.String("preset", "b32", "architecture: "+strings.Join(weights.Presets, ", "))
	seed := fs.Uint64("seed", 0, "random seed")
	dt := fs.String("dtype", "f32", "f32, f16 or bf16")
	layers := fs.Int("layers", 0, "number of encoder layers (0 = the preset's)")
	full := fs.Bool("full", false, "also write text tensors, logit_scale and position_ids, like a whole CLIPModel file")
	bare := fs.Bool("bare", false, `write only {"format":"pt"} as metadata, like a raw Hugging Face file`)
	out := fs.String("out", "", "output file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: synth needs --out and no positional arguments", errUsage)
	}
	cfg := weights.Preset(*preset)
	if cfg.HiddenSize == 0 {
		return fmt.Errorf("%w: unknown --preset %q (want %s)", errUsage, *preset, strings.Join(weights.Presets, ", "))
	}
	if *layers < 0 {
		return fmt.Errorf("%w: --layers %d", errUsage, *layers)
	}
	if *layers > 0 {
		cfg.NumLayers = *layers
	}
	dtype, err := parseDType(*dt)
	if err != nil {
		return err
	}
	return writeAtomic(*out, func(w io.Writer) error {
		return weights.Synthesize(w, cfg, weights.SynthOptions{Seed: *seed, DType: dtype, Full: *full, Bare: *bare})
	})
}

func convert(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("convert", stderr)
	in := fs.String("in", "", "input safetensors (a Hugging Face CLIP checkpoint)")
	config := fs.String("config", "", "Hugging Face config.json (optional)")
	dt := fs.String("dtype", "f16", "f32, f16, bf16 or int8")
	group := fs.Int("group-size", 0, "int8 only: one scale per run of N input elements (0: one per output channel)")
	out := fs.String("out", "", "output file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *in == "" || *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: convert needs --in and --out", errUsage)
	}
	var dtype safetensors.DType
	var err error
	if l := strings.ToLower(*dt); l == "int8" || l == "i8" {
		dtype = safetensors.I8
	} else if dtype, err = parseDType(*dt); err != nil {
		return err
	}
	if *group < 0 || *group > 0 && dtype != safetensors.I8 {
		return fmt.Errorf("%w: --group-size %d needs --dtype int8 and N >= 0", errUsage, *group)
	}
	src, cfg, err := open(*in, *config)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := writeAtomic(*out, func(w io.Writer) error {
		return weights.ConvertWith(w, src, cfg, weights.ConvertOptions{DType: dtype, GroupSize: *group})
	}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: vision tower %s, %s\n", *out, describe(cfg), dtype)
	return nil
}

func inspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", stderr)
	config := fs.String("config", "", "Hugging Face config.json (optional)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: inspect needs exactly one FILE", errUsage)
	}
	f, err := safetensors.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var hf []byte
	if *config != "" {
		if hf, err = os.ReadFile(*config); err != nil {
			return err
		}
	}
	// On failure cfg may still hold what could be inferred: print it.
	cfg, cfgErr := weights.ConfigFrom(f.Header, hf)
	fmt.Fprintf(stdout, "file: %s (%d bytes, header %d bytes, %d tensors)\n", fs.Arg(0), f.Size, f.DataStart-8, len(f.Tensors))
	if len(f.Metadata) > 0 {
		fmt.Fprintf(stdout, "metadata: %v\n", f.Metadata)
	}
	if cfg.HiddenSize > 0 {
		fmt.Fprintf(stdout, "config: %s\n", describe(cfg))
		fmt.Fprintf(stdout, "preprocess: mean %v std %v\n", cfg.ImageMean, cfg.ImageStd)
	}
	if cfgErr != nil {
		fmt.Fprintf(stdout, "vision check: FAILED: %v\n", cfgErr)
	} else {
		fmt.Fprintln(stdout, "vision check: ok")
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "offset\tbytes\tdtype\tshape\tname\t")
	vision := 0
	if cfg.HiddenSize > 0 {
		names := weights.VisionTensors(cfg)
		for _, t := range f.Tensors {
			if _, ok := names[t.Name]; ok {
				vision++
			}
		}
	}
	for _, t := range f.Tensors {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%v\t%s\t\n", t.Begin, t.Len(), t.DType, t.Shape, t.Name)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d of %d tensors belong to the vision tower\n", vision, len(f.Tensors))
	return cfgErr
}

func open(path, configPath string) (*safetensors.File, weights.Config, error) {
	var hf []byte
	if configPath != "" {
		var err error
		if hf, err = os.ReadFile(configPath); err != nil {
			return nil, weights.Config{}, err
		}
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, weights.Config{}, err
	}
	cfg, err := weights.ConfigFrom(f.Header, hf)
	if err != nil {
		f.Close()
		return nil, cfg, fmt.Errorf("%s: %w", path, err)
	}
	return f, cfg, nil
}

func describe(c weights.Config) string {
	return fmt.Sprintf("width %d, %d layers, %d heads, MLP %d, patch %d, image %d, projection %d, eps %g, %s",
		c.HiddenSize, c.NumLayers, c.NumHeads, c.IntermediateSize, c.PatchSize, c.ImageSize, c.ProjectionDim,
		c.LayerNormEps, c.Activation)
}

// writeAtomic writes to a temporary file beside path and renames it into
// place, so an interrupted run never leaves a truncated checkpoint.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600 files
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
