-- wrk: POST /api/notes with a small JSON body (each 201 is a durable write)
wrk.method = "POST"
wrk.body = '{"text":"wrk bench note"}'
wrk.headers["Content-Type"] = "application/json"
