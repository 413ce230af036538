FROM busybox
FORM alpine
