FROM busybox
RUN echo one \

    two
