module github.com/memdict/memdict/examples/memcachedbench

go 1.26.0

require (
	github.com/QuangTung97/go-memcache v0.3.5
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c
	github.com/memdict/memdict v0.0.0
)

require (
	github.com/klauspost/compress v1.20.5 // indirect
	github.com/maypok86/otter/v2 v2.4.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)

replace github.com/memdict/memdict => ../..
