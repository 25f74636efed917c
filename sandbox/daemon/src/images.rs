//! Images a run leaves in the workspace's output folder (`outputs/`), returned with its result: told
//! apart by content (PNG, JPEG, GIF and WebP by their magic bytes, SVG by an `<svg` root element), never
//! by name, and kept within a cap per image and a cap per run. An SVG is sent as its PNG rendering
//! ([`crate::svg`]): clients accept no SVG image content. An image over a cap stays in the workspace and
//! is named in the result instead, as is an SVG that could not be rendered, with the reason.

use sluice_sandbox_protocol::{
    Image, ImageCap, ImageLeftOut, ImageMime, ImageNotRendered, OUTPUT_DIR, ProducedFile, SvgRendering,
};

use crate::svg;
use crate::workspace::Workspace;

/// Enough of a file to tell whether it is an image: an SVG's root element comes after an XML
/// declaration, a doctype and perhaps comments, which fit in this many bytes in any SVG a plotting
/// library writes.
pub const SNIFF_BYTES: u64 = 4096;

/// How much image data one run's result may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageCaps {
    pub per_image: u64,
    pub per_run: u64,
}

/// The image kind of a file, from its first bytes (up to [`SNIFF_BYTES`]).
pub fn sniff(head: &[u8]) -> Option<ImageMime> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageMime::Png)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageMime::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(ImageMime::Gif)
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some(ImageMime::Webp)
    } else if is_svg(head) {
        Some(ImageMime::Svg)
    } else {
        None
    }
}

/// Whether the text's root element is `<svg`: before it an XML document may only have a byte-order
/// mark, an XML declaration, processing instructions, comments, a doctype and white space.
fn is_svg(head: &[u8]) -> bool {
    let head = &head[..head.len().min(SNIFF_BYTES as usize)];
    let mut rest = head
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(head)
        .trim_ascii_start();
    loop {
        if let Some(after) = rest.strip_prefix(b"<svg") {
            return after
                .first()
                .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/'));
        }
        let end: &[u8] = if rest.starts_with(b"<?") {
            b"?>"
        } else if rest.starts_with(b"<!--") {
            b"-->"
        } else if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<!DOCTYPE") {
            // A doctype with an internal subset (`[ ... ]`) ends at `]>`.
            let subset = rest.iter().position(|&b| b == b'[');
            let close = rest.iter().position(|&b| b == b'>');
            match (subset, close) {
                (Some(s), Some(c)) if s < c => b"]>",
                _ => b">",
            }
        } else {
            return false;
        };
        let Some(at) = rest.windows(end.len()).position(|w| w == end) else {
            return false;
        };
        rest = rest[at + end.len()..].trim_ascii_start();
    }
}

/// Whether a workspace path lies in the output folder.
pub fn in_output_dir(path: &str) -> bool {
    path.strip_prefix(OUTPUT_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// What a run's output folder gives its result.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Within the caps, in path order; an SVG as its PNG rendering.
    pub images: Vec<Image>,
    pub left_out: Vec<ImageLeftOut>,
    pub not_rendered: Vec<ImageNotRendered>,
}

/// The images among a run's produced files (in path order) that fit the caps, those that did not, and the
/// SVGs that could not be rendered. A file that vanished or cannot be read is none of them: it is still
/// listed among the produced files. Blocks while SVGs render (each at most `svg::RENDER_TIMEOUT`).
pub fn collect(ws: &Workspace, files: &[ProducedFile], caps: ImageCaps) -> Collected {
    let mut out = Collected::default();
    let mut room = caps.per_run;
    for f in files.iter().filter(|f| in_output_dir(&f.path) && f.size > 0) {
        // First only enough to say what it is: most files there may be data, not images.
        let read = |max: u64| match ws.read(&f.path, max) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::debug!(path = %f.path, "not read as an image: {e}");
                None
            }
        };
        let Some(mut content) = read(SNIFF_BYTES) else {
            continue;
        };
        let Some(mime) = sniff(&content.content.0) else {
            continue;
        };
        // An SVG is not sent as it is: its rendering, not the file, is measured against the run's room.
        let svg = mime == ImageMime::Svg;
        let limit = if svg {
            caps.per_image
        } else {
            caps.per_image.min(room)
        };
        if content.size <= limit && content.truncated {
            match read(limit + 1) {
                Some(whole) if sniff(&whole.content.0) == Some(mime) => content = whole,
                _ => continue,
            }
        }
        // The size now, not the snapshot's: another run of the session may have changed the file since.
        let size = content.size.max(content.content.0.len() as u64);
        let cap = if size > caps.per_image {
            Some((ImageCap::PerImage, caps.per_image))
        } else if (!svg && size > room) || content.truncated {
            Some((ImageCap::PerRun, caps.per_run))
        } else {
            None
        };
        if let Some((cap, cap_bytes)) = cap {
            out.left_out.push(ImageLeftOut {
                path: f.path.clone(),
                mime,
                size,
                cap,
                cap_bytes,
            });
            continue;
        }
        if !svg {
            room -= size;
            out.images.push(Image {
                path: f.path.clone(),
                mime,
                data: content.content,
                rendered_from_svg: None,
            });
            continue;
        }
        let not_rendered = |reason: String| ImageNotRendered {
            path: f.path.clone(),
            size,
            reason,
        };
        match svg::render_isolated(content.content.0, svg::RENDER_TIMEOUT) {
            Err(e) => out.not_rendered.push(not_rendered(e.to_string())),
            Ok(png) => {
                let n = png.data.len() as u64;
                if n > caps.per_image {
                    out.not_rendered.push(not_rendered(format!(
                        "its PNG rendering ({n} bytes, {}x{} px) is over the limit of {} bytes per image",
                        png.width, png.height, caps.per_image
                    )));
                } else if n > room {
                    out.not_rendered.push(not_rendered(format!(
                        "its PNG rendering ({n} bytes) is more than the run's earlier images left of the \
                         limit of {} bytes per run",
                        caps.per_run
                    )));
                } else {
                    room -= n;
                    out.images.push(Image {
                        path: f.path.clone(),
                        mime: ImageMime::Png,
                        data: png.data.into(),
                        rendered_from_svg: Some(SvgRendering {
                            width: png.width,
                            height: png.height,
                            text_left_out: png.text_left_out,
                        }),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use sluice_sandbox_protocol::Change;

    /// Writes `files` into the workspace and lists them as a run's created files.
    fn write_all(ws: &Workspace, files: &[(&str, Vec<u8>)]) -> Vec<ProducedFile> {
        files
            .iter()
            .map(|(path, content)| {
                ws.write(path, content, true).unwrap();
                ProducedFile {
                    path: (*path).into(),
                    size: content.len() as u64,
                    change: Change::Created,
                }
            })
            .collect()
    }

    fn check(head: &[u8], expected: Option<ImageMime>) {
        assert_eq!(sniff(head), expected, "{:?}", String::from_utf8_lossy(head));
    }

    #[test]
    fn kinds_come_from_content() {
        let svg = Some(ImageMime::Svg);
        let cases: Vec<(&[u8], Option<ImageMime>)> = vec![
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some(ImageMime::Png)),
            (b"\xFF\xD8\xFF\xE0\0\x10JFIF", Some(ImageMime::Jpeg)),
            (b"GIF89a\x01\0\x01\0", Some(ImageMime::Gif)),
            (b"GIF87a", Some(ImageMime::Gif)),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Some(ImageMime::Webp)),
            (b"RIFF\0\0\0\0WEBP", Some(ImageMime::Webp)),
            (b"<svg xmlns='http://www.w3.org/2000/svg'/>", svg),
            (b"<svg>", svg),
            (b"<svg", svg),
            // matplotlib's own prologue.
            (
                b"<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"no\"?>\n<!DOCTYPE svg PUBLIC \
                  \"-//W3C//DTD SVG 1.1//EN\"\n  \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n\
                  <svg xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"460.8pt\">",
                svg,
            ),
            (b"\xEF\xBB\xBF  <!-- made by hand -->\n<svg width='1'>", svg),
            (b"<!doctype svg [ <!ENTITY a 'b'> ]>\n<svg/>", svg),
            // Not images, whatever their names would say.
            (b"<svgfoo/>", None),
            (b"<html><svg></svg></html>", None),
            (b"<?xml version='1.0'?><note/>", None),
            (b"<!-- never closed <svg>", None),
            (b"\x89PNG", None),
            (b"\xFF\xD8", None),
            (b"GIF8", None),
            (b"GIF90a", None),
            (b"RIFF\x24\0\0\0WAVEfmt ", None),
            (b"RIFF\0\0\0\0WEB", None),
            (b"month,total\n", None),
            (b"", None),
        ];
        for (head, expected) in cases {
            check(head, expected);
        }
    }

    #[test]
    fn only_the_output_folder_counts() {
        let cases = [
            ("outputs/a.png", true),
            ("outputs/sub/a.png", true),
            ("outputs", false),
            ("outputsx/a.png", false),
            ("a.png", false),
            ("x/outputs/a.png", false),
        ];
        for (path, expected) in cases {
            assert_eq!(in_output_dir(path), expected, "{path}");
        }
    }

    #[test]
    fn caps_leave_images_out_and_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        let ws = Workspace::new(fd.into());
        let png = |n: usize| {
            let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
            v.resize(n, 0);
            v
        };
        let files = [
            ("data.csv", b"a,b\n1,2\n".to_vec()),
            ("outputs/a.png", png(40)),
            ("outputs/b.png", png(150)),
            ("outputs/c.gif", b"GIF89a".to_vec()),
            ("outputs/d.png", png(60)),
            ("outputs/e.png", png(50)),
            ("outputs/notes.txt", b"hello".to_vec()),
            ("outputs/empty.png", vec![]),
        ];
        let mut produced = write_all(&ws, &files);
        // Listed before the run ended, then removed: skipped, not an error.
        produced.push(ProducedFile {
            path: "outputs/gone.png".into(),
            size: 10,
            change: Change::Created,
        });
        let caps = ImageCaps {
            per_image: 100,
            per_run: 110,
        };
        let Collected {
            images,
            left_out,
            not_rendered,
        } = collect(&ws, &produced, caps);
        assert_eq!(not_rendered, vec![]);
        let sent: Vec<(&str, ImageMime, usize)> = images
            .iter()
            .map(|i| (i.path.as_str(), i.mime, i.data.0.len()))
            .collect();
        assert_eq!(
            sent,
            vec![
                ("outputs/a.png", ImageMime::Png, 40),
                ("outputs/c.gif", ImageMime::Gif, 6),
                ("outputs/d.png", ImageMime::Png, 60),
            ]
        );
        assert_eq!(images[0].data.0, png(40));
        // Larger than the first read: the whole image is read in a second step; data of that size is not.
        let big = png(10_000);
        ws.write("outputs/z.png", &big, false).unwrap();
        ws.write("outputs/z.csv", &vec![b'1'; 10_000], false).unwrap();
        let more: Vec<ProducedFile> = ["outputs/z.csv", "outputs/z.png"]
            .into_iter()
            .map(|p| ProducedFile {
                path: p.into(),
                size: 10_000,
                change: Change::Created,
            })
            .collect();
        let caps_big = ImageCaps {
            per_image: 20_000,
            per_run: 20_000,
        };
        let Collected {
            images: whole,
            left_out: none,
            ..
        } = collect(&ws, &more, caps_big);
        assert_eq!(
            (whole.len(), whole[0].path.as_str(), &whole[0].data.0, none.len()),
            (1, "outputs/z.png", &big, 0)
        );
        assert_eq!(
            left_out,
            vec![
                ImageLeftOut {
                    path: "outputs/b.png".into(),
                    mime: ImageMime::Png,
                    size: 150,
                    cap: ImageCap::PerImage,
                    cap_bytes: 100,
                },
                ImageLeftOut {
                    path: "outputs/e.png".into(),
                    mime: ImageMime::Png,
                    size: 50,
                    cap: ImageCap::PerRun,
                    cap_bytes: 110,
                },
            ]
        );
    }
}
