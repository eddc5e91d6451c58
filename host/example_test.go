package host_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/imgembed/imgembed/host"
)

func Example() {
	ctx := context.Background()
	// Leave Model empty for CLIP ViT-B/32 from Hugging Face (downloaded
	// once into the user cache); here a small local test model.
	e, err := host.New(ctx, host.Options{
		Model:    "../testdata/models/tiny-f32.safetensors",
		CacheDir: filepath.Join(os.TempDir(), "imgembed-example"), // default: the user cache
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	emb, err := e.Embed(ctx, "../testdata/images/chelsea.png")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(emb), e.Config().ImageSize)

	_, err = e.Embed(ctx, []byte("<svg></svg>"))
	var he *host.Error
	if errors.As(err, &he) {
		fmt.Println(he.Code)
	}
	fmt.Println(errors.Is(err, host.ErrUnsupportedImageFormat))
	// Output:
	// 32 64
	// UnsupportedImageFormat
	// true
}
