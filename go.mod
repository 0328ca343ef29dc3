module github.com/dmabench/dmabench

go 1.26
