package admin_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"

	"github.com/memdict/memdict/tool"
	"github.com/memdict/memdict/tool/admin"
)

// A service mounts the admin page of its Tool at /admin/ on its own mux,
// next to its own handlers; the operator opens the printed link.
func Example() {
	t, err := tool.New(tool.Config{}) // tool.FromEnv() in a real service
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	visits, err := tool.Dict[int](t, "visits", "")
	if err != nil {
		log.Fatal(err)
	}

	page, err := admin.New(t, admin.Options{
		Token:  "s3cret-admin-token", // "" generates one: page.Token()
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", page))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := visits.Get("home")
		_ = visits.Put("home", n+1)
		fmt.Fprintf(w, "visit %d\n", n+1)
	})
	srv := httptest.NewServer(mux) // http.ListenAndServe("127.0.0.1:8080", mux)
	defer srv.Close()

	// What the operator's browser does with the link the service prints.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for range 3 {
		resp, err := browser.Get(srv.URL + "/")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := browser.Get(srv.URL + "/admin/?token=" + page.Token())
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Request.URL.Path, resp.StatusCode)
	fmt.Println("signed in:", strings.Contains(string(body), `id="signed-in"`))
	fmt.Println("shows the program's Dict:", strings.Contains(string(body), `data-source="program" data-plugin="default" data-prefix="visits"`))
	// Output:
	// /admin/ 200
	// signed in: true
	// shows the program's Dict: true
}
