module example.com/zdd-go

go 1.19
