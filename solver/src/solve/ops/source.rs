//! The source step: a named local directory, a URL's content, scratch, or a base image
//! (from the store, pulled when missing) — each from its home in `crate::source`, reported
//! and keyed here.

use std::time::Instant;

use kiln_llb::{Op, OpId, Source};

use crate::cache::key;
use crate::progress::Vertex;
use crate::solve::{Inner, LayerRecord, OpResult, SolveError};

/// Solves the source op `id`.
pub(crate) fn solve(
    cx: &Inner,
    id: OpId,
    op: &Op,
    source: &Source,
) -> Result<OpResult, SolveError> {
    let name = cx.name(id);
    let vertex = Vertex::new(&cx.progress, id.0, &name);
    match source {
        Source::Local { name } => {
            let (key, context) = crate::source::local::named(&cx.opts.contexts, name)
                .map_err(|e| cx.step_failed(id, e.into()))?;
            Ok(OpResult::Dir { key, context })
        }
        Source::Http {
            url,
            checksum,
            filename,
        } => {
            let request = crate::source::http::Request {
                url,
                checksum: checksum.as_deref(),
                filename,
            };
            let got = crate::source::http::download(
                cx.store.root(),
                request,
                cx.ignores_cache(id),
                vertex,
            )
            .map_err(|e| cx.step_failed(id, e.into()))?;
            Ok(OpResult::Dir {
                key: got.key,
                context: got.context,
            })
        }
        Source::Scratch => Ok(OpResult::Layers {
            key: key::source(op, None),
            layers: Vec::new(),
            manifest_digest: None,
        }),
        image => {
            let started = Instant::now();
            let (r, pulled) = match &cx.opts.images {
                Some(images) => images.resolve(image),
                None => crate::image::resolve(&cx.store, image)
                    .map(|r| (r, None))
                    .map_err(Into::into),
            }
            .map_err(|e| cx.step_failed(id, e.into()))?;
            match pulled {
                Some(pulled) => {
                    vertex.started();
                    vertex.log(pulled.to_string());
                    vertex.done(started.elapsed());
                }
                // Resolving a base from the store builds nothing: report it like a cache hit.
                None if !cx.is_internal(id) => vertex.cached(),
                None => {}
            }
            Ok(OpResult::Layers {
                key: key::source(op, Some(&r.manifest_digest)),
                layers: r.layers.iter().map(LayerRecord::from).collect(),
                manifest_digest: Some(r.manifest_digest),
            })
        }
    }
}
