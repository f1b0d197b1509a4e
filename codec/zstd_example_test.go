package codec_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/memdict/memdict"
	"github.com/memdict/memdict/backend/memory"
	"github.com/memdict/memdict/codec"
)

// Zstd compresses a Dict's large values; the header of each says so, so
// that a Dict with the plain codec reads them too.
func ExampleZstd() {
	be := memory.New()
	reports, _ := memdict.New[[]string](be, "reports", memdict.WithCodec(codec.Zstd(codec.JSON, 1024)))
	lines := strings.Split(strings.Repeat("GET /index.html 200 0.004s\n", 500), "\n")
	_ = reports.Put("today", lines)

	it, _ := be.Get(context.Background(), reports.BackendKey("today"))
	fmt.Println("stored in fewer than 1000 bytes:", len(it.Value) < 1000)

	plain, _ := memdict.New[[]string](be, "reports", memdict.WithCodec(codec.JSON))
	v, _ := plain.Get("today")
	fmt.Println(len(v), v[0])
	// Output:
	// stored in fewer than 1000 bytes: true
	// 501 GET /index.html 200 0.004s
}
