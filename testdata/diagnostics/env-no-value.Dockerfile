FROM busybox
ENV PATH
