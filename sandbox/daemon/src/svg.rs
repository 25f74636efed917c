//! Renders an SVG a run saved in its output folder to the PNG sent in its place: clients such as Claude
//! accept PNG, JPEG, GIF and WebP image content but not SVG, and an SVG image makes every later turn of
//! the conversation fail. The SVG is untrusted, so it is parsed in a renderer process of its own
//! ([`process`]: limited memory and CPU, a seccomp filter with no way to open, connect, run or signal
//! anything), killed when it takes longer than [`RENDER_TIMEOUT`], and bounded within: the caller only
//! passes SVGs within the per-image cap; usvg stops at a million nodes and 1024 levels; no file or URL the
//! SVG names is ever opened (only `data:` PNGs are drawn, within a pixel cap); the PNG is scaled down to
//! [`MAX_SIDE`] and [`MAX_PIXELS`], and the daemon checks that what comes back is such a PNG.

use std::sync::Arc;
use std::time::Duration;

use resvg::tiny_skia;
use resvg::usvg::{self, roxmltree};

use crate::error::SvgError;

mod process;

pub use process::{
    RENDER_ARG, filter as renderer_filter, render_isolated, serve as serve_renderer, use_program,
};

/// The longest side of a rendered PNG, in pixels.
pub const MAX_SIDE: u32 = 2048;
/// The most pixels a rendered PNG has (about 4 megapixels, 16 MB as RGBA while it is drawn).
pub const MAX_PIXELS: u64 = 4_000_000;
/// The most pixels of a PNG embedded in the SVG as a `data:` URL (matplotlib's `imshow` does that):
/// 64 MiB decoded, the PNG decoder's own limit.
pub const MAX_EMBEDDED_PIXELS: u64 = 16 << 20;
/// How long a run's result waits for one rendering; the renderer is killed then.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(10);

const SVG_NS: &str = "http://www.w3.org/2000/svg";
const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// An SVG rendered to PNG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Png {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// The SVG has `<text>` elements, which are not drawn: no fonts are loaded.
    pub text_left_out: bool,
}

/// Renders `svg` to PNG at its own size, scaled down to the caps. Pure: it reads no file.
pub fn render(svg: &[u8]) -> Result<Png, SvgError> {
    let text = std::str::from_utf8(svg).map_err(|_| SvgError::Parse("it is not UTF-8 text".into()))?;
    let xml = roxmltree::ParsingOptions {
        // matplotlib's SVGs have a doctype; roxmltree expands internal entities only, within its own
        // limits (depth 10, 255 references each), and loads no external DTD.
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(text, xml).map_err(|e| SvgError::Parse(e.to_string()))?;
    let text_left_out = doc
        .descendants()
        .any(|n| n.is_element() && n.tag_name().name() == "text" && n.tag_name().namespace() == Some(SVG_NS));
    let options = usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|mime, data, _| embedded_png(mime, data)),
            // File paths, `file:` and `http:` URLs alike: never opened.
            resolve_string: Box::new(|href, _| {
                tracing::debug!("an SVG image's external reference is not followed: {href:.200}");
                None
            }),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_xmltree(&doc, &options).map_err(|e| SvgError::Parse(e.to_string()))?;
    let size = tree.size();
    let (width, height) = fit(size.width(), size.height()).ok_or(SvgError::NoSize)?;
    let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or(SvgError::NoSize)?;
    let transform =
        tiny_skia::Transform::from_scale(width as f32 / size.width(), height as f32 / size.height());
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    let data = pixmap
        .encode_png()
        .map_err(|e| SvgError::Failed(format!("the PNG cannot be encoded: {e}")))?;
    Ok(Png {
        data,
        width,
        height,
        text_left_out,
    })
}

/// The rendered size for an SVG of `width` × `height` (CSS pixels): its own, scaled down (keeping its
/// proportions) until the longer side is at most [`MAX_SIDE`] and the area at most [`MAX_PIXELS`]; at
/// least one pixel each way. `None` for a size that is not a positive finite number.
pub fn fit(width: f32, height: f32) -> Option<(u32, u32)> {
    let (w, h) = (f64::from(width), f64::from(height));
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return None;
    }
    let scale = 1f64
        .min(f64::from(MAX_SIDE) / w.max(h))
        .min((MAX_PIXELS as f64 / (w * h)).sqrt());
    // Rounded down so that neither cap is passed by rounding (the millionth forgives the error of the
    // square root: 2000 stays 2000, not 1999); the casts saturate.
    let side = |v: f64| ((v * scale + 1e-6).floor() as u32).clamp(1, MAX_SIDE);
    Some((side(w), side(h)))
}

/// The image an SVG embeds as a `data:` URL, when it is a PNG of at most [`MAX_EMBEDDED_PIXELS`] (what
/// matplotlib writes for `imshow`). JPEG, GIF, WebP and nested SVG are not decoded: fewer decoders see
/// untrusted bytes, and a nested SVG would multiply the work.
fn embedded_png(mime: &str, data: Arc<Vec<u8>>) -> Option<usvg::ImageKind> {
    let (width, height) = png_size(&data)?;
    let ok = u64::from(width) * u64::from(height) <= MAX_EMBEDDED_PIXELS;
    if !ok {
        tracing::debug!("an SVG's embedded {mime} image of {width}x{height} is over the pixel cap");
    }
    ok.then_some(usvg::ImageKind::PNG(data))
}

/// A PNG's width and height from its header (`IHDR` is always the first chunk).
fn png_size(data: &[u8]) -> Option<(u32, u32)> {
    if !data.starts_with(PNG_MAGIC) || data.get(12..16) != Some(b"IHDR".as_slice()) {
        return None;
    }
    let be = |at: usize| Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?));
    Some((be(16)?, be(20)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// A `w` × `h` PNG of one colour.
    fn png(w: u32, h: u32, rgba: [u8; 4]) -> Vec<u8> {
        let mut p = tiny_skia::Pixmap::new(w, h).unwrap();
        p.fill(tiny_skia::Color::from_rgba8(rgba[0], rgba[1], rgba[2], rgba[3]));
        p.encode_png().unwrap()
    }

    /// The rendered PNG's pixel at (x, y) as RGBA (premultiplied; opaque colours are unchanged).
    fn pixel(p: &Png, x: u32, y: u32) -> [u8; 4] {
        let map = tiny_skia::Pixmap::decode_png(&p.data).unwrap();
        let c = map.pixel(x, y).unwrap();
        [c.red(), c.green(), c.blue(), c.alpha()]
    }

    fn svg(body: &str) -> Vec<u8> {
        format!(
            "<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' \
             width='40' height='20'>{body}</svg>"
        )
        .into_bytes()
    }

    const RED: [u8; 4] = [255, 0, 0, 255];
    const CLEAR: [u8; 4] = [0, 0, 0, 0];

    #[test]
    fn an_svg_becomes_a_png_of_its_own_size() {
        let p = render(&svg("<rect x='20' width='20' height='20' fill='red'/>")).unwrap();
        assert!(p.data.starts_with(PNG_MAGIC));
        assert_eq!((p.width, p.height, p.text_left_out), (40, 20, false));
        assert_eq!((pixel(&p, 30, 10), pixel(&p, 5, 10)), (RED, CLEAR));
        // Points are CSS pixels at 96 dpi, as matplotlib's `460.8pt` × `345.6pt` needs.
        let pt =
            render(b"<svg xmlns='http://www.w3.org/2000/svg' width='460.8pt' height='345.6pt'/>").unwrap();
        assert_eq!((pt.width, pt.height), (614, 460));
    }

    #[test]
    fn large_sizes_are_scaled_down_to_the_caps() {
        type Size = Option<(u32, u32)>;
        let cases: Vec<((f32, f32), Size)> = vec![
            ((614.4, 460.8), Some((614, 460))),
            ((0.4, 0.4), Some((1, 1))),
            ((10_000.0, 100.0), Some((2048, 20))),
            ((100.0, 50_000.0), Some((4, 2048))),
            ((1.0, 50_000.0), Some((1, 2048))),
            ((5000.0, 5000.0), Some((2000, 2000))),
            ((2048.0, 2048.0), Some((2000, 2000))),
            ((4000.0, 3000.0), Some((2048, 1536))),
            ((1e30, 1e30), Some((2000, 2000))),
            ((0.0, 10.0), None),
            ((-1.0, 10.0), None),
            ((f32::NAN, 10.0), None),
            ((f32::INFINITY, 10.0), None),
        ];
        for ((w, h), expected) in cases {
            let got = fit(w, h);
            assert_eq!(got, expected, "{w} x {h}");
            if let Some((w, h)) = got {
                assert!(w <= MAX_SIDE && h <= MAX_SIDE && u64::from(w) * u64::from(h) <= MAX_PIXELS);
            }
        }
        let big = render(b"<svg xmlns='http://www.w3.org/2000/svg' width='100000' height='50000'><rect width='100%' height='100%' fill='red'/></svg>").unwrap();
        assert_eq!((big.width, big.height), (2048, 1024));
        assert_eq!(pixel(&big, 2047, 1023), RED);
    }

    #[test]
    fn no_file_or_url_the_svg_names_is_read() {
        // A red PNG on disk: the default resolver would draw it; ours must not even open it.
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join("red.png");
        std::fs::write(&on_disk, png(20, 20, RED)).unwrap();
        let on_disk = on_disk.display().to_string();
        let refs = [
            on_disk.clone(),
            format!("file://{on_disk}"),
            "file:///etc/passwd".to_owned(),
            "/etc/passwd".to_owned(),
            "../../../../etc/passwd".to_owned(),
            "http://example.com/red.png".to_owned(),
            "https://example.com/red.svg".to_owned(),
        ];
        for href in &refs {
            for attr in ["href", "xlink:href"] {
                let image = format!("<image {attr}='{href}' x='20' width='20' height='20'/>");
                let filtered = format!(
                    "<filter id='f'><feImage {attr}='{href}'/></filter><rect x='20' width='20' height='20' filter='url(#f)'/>"
                );
                for body in [image, filtered] {
                    let p = render(&svg(&body)).unwrap();
                    assert_eq!(pixel(&p, 30, 10), CLEAR, "{body}");
                }
            }
        }
        // An external entity is not loaded either: roxmltree has no I/O.
        let entity = "<?xml version='1.0'?><!DOCTYPE svg [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\
                      <svg xmlns='http://www.w3.org/2000/svg' width='4' height='4'><desc>&x;</desc></svg>";
        let err = render(entity.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("the SVG cannot be parsed: unknown entity reference"),
            "{err}"
        );
        // The control: the same PNG embedded as a data URL is drawn.
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(png(20, 20, RED));
        let p = render(&svg(&format!(
            "<image href='data:image/png;base64,{data}' x='20' width='20' height='20'/>"
        )))
        .unwrap();
        assert_eq!((pixel(&p, 30, 10), pixel(&p, 5, 10)), (RED, CLEAR));
    }

    #[test]
    fn only_embedded_pngs_within_the_pixel_cap_are_drawn() {
        type Size = Option<(u32, u32)>;
        let cases: Vec<(&[u8], Size)> = vec![
            (
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\0\x80",
                Some((256, 128)),
            ),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01", None),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIDAT\0\0\x01\0\0\0\0\x80", None),
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", None),
            (b"GIF89a\x01\0\x01\0", None),
            (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        ];
        for (data, expected) in cases {
            assert_eq!(png_size(data), expected, "{data:?}");
        }
        let huge = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\x01\0\0\0\x01\0\0".to_vec();
        assert_eq!(png_size(&huge), Some((65536, 65536)));
        assert!(embedded_png("image/png", Arc::new(huge)).is_none());
        assert!(embedded_png("image/png", Arc::new(png(4, 4, RED))).is_some());
        // A JPEG or a nested SVG in a data URL is not drawn, whatever its MIME type says.
        use base64::Engine as _;
        let inner = base64::engine::general_purpose::STANDARD
            .encode(svg("<rect width='40' height='20' fill='red'/>"));
        let p = render(&svg(&format!(
            "<image href='data:image/svg+xml;base64,{inner}' width='40' height='20'/>"
        )))
        .unwrap();
        assert_eq!(pixel(&p, 30, 10), CLEAR);
    }

    #[test]
    fn failures_say_why() {
        let cases: Vec<(&[u8], &str)> = vec![
            (
                b"\xFF\xFE<svg/>",
                "the SVG cannot be parsed: it is not UTF-8 text",
            ),
            (
                b"<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>",
                "the SVG cannot be parsed: ",
            ),
            (
                b"<svg xmlns='http://www.w3.org/2000/svg' width='0' height='10'/>",
                "the SVG cannot be parsed: ",
            ),
            (b"<html/>", "the SVG cannot be parsed: "),
        ];
        for (data, expected) in cases {
            let err = render(data).unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{:?}: {err}",
                String::from_utf8_lossy(data)
            );
        }
        // Text is not drawn, and the result says so.
        let p = render(&svg("<text x='1' y='10'>hello</text>")).unwrap();
        assert!(p.text_left_out);
    }
}
