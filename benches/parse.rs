//! Parser benchmarks: a generated 1 MB Dockerfile through the parser alone and through the
//! parser plus instruction typing (what `kiln parse --format json` does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;

fn main() {
    divan::main();
}

/// About 1 MB of realistic Dockerfile: stages, continuations, heredocs, flags, JSON forms.
fn big_dockerfile() -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:12\n");
    let mut i = 0;
    while s.len() < 1 << 20 {
        s.push_str(&format!(
            "FROM ${{BASE}} AS stage{i}\n\
             ENV PATH=/usr/local/bin:$PATH LANG=C.UTF-8 N={i}\n\
             LABEL org.example.n=\"{i}\" org.example.desc=\"stage number {i}\"\n\
             WORKDIR /src/{i}\n\
             COPY --chown=1000:1000 --chmod=0644 src/ ./\n\
             RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n    \
             apt-get update && \\\n    # a comment inside a continuation\n    \
             apt-get install -y --no-install-recommends curl ca-certificates && \\\n    \
             rm -rf /var/lib/apt/lists/*\n\
             RUN <<EOF\nset -e\necho building {i}\nmake -j2 all\nEOF\n\
             EXPOSE 80/tcp 443/tcp 8000-8010/udp\n\
             HEALTHCHECK --interval=5s --timeout=3s CMD [\"curl\", \"-f\", \"http://localhost/\"]\n\
             CMD [\"/usr/local/bin/app\", \"--port\", \"80\"]\n\n"
        ));
        i += 1;
    }
    s
}

#[divan::bench]
fn parse_1mb(bencher: divan::Bencher<'_, '_>) {
    let src = big_dockerfile();
    bencher
        .counter(divan::counter::BytesCount::new(src.len()))
        .bench(|| kiln_frontend::parser::parse(black_box(&src)).unwrap());
}

#[divan::bench]
fn parse_and_type_1mb(bencher: divan::Bencher<'_, '_>) {
    let src = big_dockerfile();
    bencher
        .counter(divan::counter::BytesCount::new(src.len()))
        .bench(|| {
            let parsed = kiln_frontend::parser::parse(black_box(&src)).unwrap();
            kiln_frontend::json_document(&parsed, &src).unwrap()
        });
}

/// The same file with its heredocs replaced by plain RUN lines, to see what heredocs cost.
#[divan::bench]
fn parse_1mb_no_heredocs(bencher: divan::Bencher<'_, '_>) {
    let src = big_dockerfile()
        .replace("RUN <<EOF\nset -e\n", "RUN set -e\nRUN x\n")
        .replace("make -j2 all\nEOF\n", "RUN make -j2 all\n");
    bencher
        .counter(divan::counter::BytesCount::new(src.len()))
        .bench(|| kiln_frontend::parser::parse(black_box(&src)).unwrap());
}
