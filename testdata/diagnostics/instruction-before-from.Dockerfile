ENV A=b
FROM busybox
