FROM busybox
CMD ["echo", 1]
