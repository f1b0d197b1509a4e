// Package webtest is the HTTP client of the admin page's tests (the
// memdict command's serve, package tool/admin): a client with a cookie
// jar that sends the Origin header a browser sends on a same-origin form
// post. Only tests import it.
package webtest

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Client is an HTTP client with a cookie jar, for one page. Its methods
// fail the test on a transport error.
type Client struct {
	t testing.TB
	// HTTP is the client, with its cookie jar.
	HTTP *http.Client
	// Base is the page's URL, to which Get and Post add their path.
	Base string
	// Origin is the Origin header of posts; "" for none.
	Origin string
}

// New returns a Client for the page at base that posts with the Origin
// header origin ("" for none).
func New(t testing.TB, base, origin string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{t: t, HTTP: &http.Client{Jar: jar}, Base: base, Origin: origin}
}

// Get fetches Base+path and returns the status code and the body.
func (c *Client) Get(path string) (int, string) {
	c.t.Helper()
	resp, err := c.HTTP.Get(c.Base + path)
	return c.read(resp, err)
}

// Post posts form to Base+path, URL-encoded, and returns the status code
// and the body.
func (c *Client) Post(path string, form url.Values) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.Base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Origin != "" {
		req.Header.Set("Origin", c.Origin)
	}
	resp, err := c.HTTP.Do(req)
	return c.read(resp, err)
}

func (c *Client) read(resp *http.Response, err error) (int, string) {
	c.t.Helper()
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
