// Package docs holds memdict's longer documentation (the Markdown files of
// this directory) and readme_test.go, which compiles and runs the code of
// the README's quick start and testing sections as written. It has no API.
package docs
