FROM busybox AS app
FROM alpine AS APP
