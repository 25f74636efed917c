//! Images a run saves in the workspace's `outputs/` folder come back with its result (by content, within
//! the caps, the rest named; an SVG as a PNG rendering that reads nothing the SVG names), matplotlib
//! plots headless from its prebuilt font cache, and code that closes its own output still gets a clear
//! result from a daemon that keeps serving.

use pretty_assertions::assert_eq;
use resvg::tiny_skia;
use sluice_sandbox_protocol::*;

use super::harness::*;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

fn sent(r: &RunResult) -> Vec<(String, ImageMime, usize)> {
    r.images
        .iter()
        .map(|i| (i.path.clone(), i.mime, i.data.0.len()))
        .collect()
}

/// A PNG's pixel at (x, y) as RGBA (premultiplied; opaque colours are unchanged).
fn pixel(png: &[u8], x: u32, y: u32) -> [u8; 4] {
    let map = tiny_skia::Pixmap::decode_png(png).unwrap();
    let c = map.pixel(x, y).unwrap();
    [c.red(), c.green(), c.blue(), c.alpha()]
}

fn read(c: &mut BlockingClient, s: &SessionKey, path: &str) -> Vec<u8> {
    match c.call(Request::ReadFile(ReadFile {
        session: s.clone(),
        path: path.into(),
        max_bytes: None,
    })) {
        Ok(Response::ReadFile(f)) => f.content.0,
        other => panic!("read_file {path}: {other:?}"),
    }
}

#[test]
fn a_matplotlib_plot_comes_back_as_a_png() {
    let Some(python) = sandbox_venv_python() else {
        return;
    };
    for kind in backends() {
        eprintln!("backend: {kind:?}");
        let d = Daemon::start_backend(kind, &["--python", &python]);
        let mut c = d.client();
        let s = session("plot");
        open(&mut c, &s);
        // The import is timed inside the run: it is what the font cache built at setup saves every run.
        let code = "import os, time\n\
                    t = time.monotonic()\n\
                    import matplotlib\n\
                    import matplotlib.pyplot as plt\n\
                    print(f'import {time.monotonic() - t:.3f}s')\n\
                    fig, ax = plt.subplots(figsize=(4, 3))\n\
                    ax.plot([1, 2, 3, 4], [10, 12, 9, 14], marker='o')\n\
                    ax.set_title('orders per month')\n\
                    fig.savefig('outputs/orders.png', dpi=72)\n\
                    print(matplotlib.get_backend().lower(), matplotlib.get_cachedir())\n\
                    print(sorted(os.listdir('/tmp/matplotlib')), os.path.islink('/tmp/matplotlib/fontlist-v3.11.0.json'))";
        let r = run_with(&mut c, &s, code, Some(120_000), Some(1024));
        eprintln!("{kind:?}: {}", r.stdout.text.lines().next().unwrap_or_default());
        assert_eq!(r.exit.code, Some(0), "{kind:?}: {r:?}");
        // Headless, no warnings: nothing on stderr (a font cache rebuilt or a config dir it cannot write
        // would say so there).
        assert_eq!(r.stderr.text, "", "{kind:?}");
        let lines: Vec<&str> = r.stdout.text.lines().skip(1).collect();
        assert_eq!(
            lines,
            vec!["agg /tmp/matplotlib", "['fontlist-v3.11.0.json'] True"],
            "{kind:?}"
        );
        // Only the plot changed in the workspace: no font cache or config written there.
        let files: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, vec!["outputs/orders.png"], "{kind:?}");
        assert_eq!(r.images.len(), 1, "{kind:?}: {:?}", r.images_left_out);
        let image = &r.images[0];
        assert_eq!(
            (image.path.as_str(), image.mime),
            ("outputs/orders.png", ImageMime::Png)
        );
        assert!(image.data.0.starts_with(PNG_MAGIC), "{kind:?}");
        assert_eq!(image.data.0.len() as u64, r.files[0].size);
        assert_eq!(read(&mut c, &s, "outputs/orders.png"), image.data.0);
        d.assert_serving();
    }
}

#[test]
fn images_over_a_cap_are_named_and_nothing_is_lost() {
    for kind in backends() {
        let d = Daemon::start_backend(kind, &["--image-bytes", "1000", "--images-total-bytes", "1500"]);
        let mut c = d.client();
        let s = session("caps");
        open(&mut c, &s);
        let code = "import os\n\
                    png = lambda n: b'\\x89PNG\\r\\n\\x1a\\n' + bytes(i % 251 for i in range(n - 8))\n\
                    for name, n in [('big.png', 5000), ('second.png', 600), ('small.png', 600), ('third.png', 600)]:\n\
                    \x20   open('outputs/' + name, 'wb').write(png(n))\n\
                    print('kept')";
        let r = run(&mut c, &s, code, None);
        assert_eq!(
            (r.exit.code, r.stdout.text.as_str()),
            (Some(0), "kept\n"),
            "{kind:?}: {r:?}"
        );
        assert_eq!(
            sent(&r),
            vec![
                ("outputs/second.png".into(), ImageMime::Png, 600),
                ("outputs/small.png".into(), ImageMime::Png, 600),
            ],
            "{kind:?}"
        );
        assert_eq!(
            r.images_left_out,
            vec![
                ImageLeftOut {
                    path: "outputs/big.png".into(),
                    mime: ImageMime::Png,
                    size: 5000,
                    cap: ImageCap::PerImage,
                    cap_bytes: 1000,
                },
                ImageLeftOut {
                    path: "outputs/third.png".into(),
                    mime: ImageMime::Png,
                    size: 600,
                    cap: ImageCap::PerRun,
                    cap_bytes: 1500,
                },
            ],
            "{kind:?}"
        );
        // Every file is still listed and still in the workspace, whole.
        assert_eq!(r.files.len(), 4, "{:?}", r.files);
        let big = read(&mut c, &s, "outputs/big.png");
        assert_eq!(big.len(), 5000);
        assert!(big.starts_with(PNG_MAGIC));
        // An image the next run leaves alone does not come back again.
        let r = run(
            &mut c,
            &s,
            "open('outputs/small.png', 'ab').write(b'x'); print('again')",
            None,
        );
        assert_eq!(
            sent(&r),
            vec![("outputs/small.png".into(), ImageMime::Png, 601)],
            "{kind:?}"
        );
        assert_eq!(r.images_left_out, vec![]);
        d.assert_serving();
    }
}

#[test]
fn images_are_told_by_content_not_by_name() {
    for kind in backends() {
        let d = Daemon::start_backend(kind, &[]);
        let mut c = d.client();
        let s = session("kinds");
        open(&mut c, &s);
        // The daemon made the output folder when it opened the session.
        let Response::ListDirectory(listing) = c
            .call(Request::ListDirectory(PathArgs {
                session: s.clone(),
                path: ".".into(),
            }))
            .unwrap()
        else {
            panic!()
        };
        let names: Vec<(&str, FileKind)> = listing
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind))
            .collect();
        assert_eq!(names, vec![("outputs", FileKind::Directory)], "{kind:?}");
        let code = "import os\n\
                    svg = '<?xml version=\"1.0\" encoding=\"utf-8\"?>\\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>\\n'\n\
                    open('outputs/chart.svg', 'w').write(svg)\n\
                    open('outputs/photo.jpeg', 'wb').write(b'\\xff\\xd8\\xff\\xe0\\x00\\x10JFIF\\x00' + bytes(100))\n\
                    open('outputs/anim.bin', 'wb').write(b'GIF89a' + bytes(20))\n\
                    open('outputs/pic.webp', 'wb').write(b'RIFF\\x1c\\x00\\x00\\x00WEBPVP8 ' + bytes(16))\n\
                    open('outputs/fake.png', 'w').write('not an image at all')\n\
                    open('outputs/renamed.txt', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + bytes(40))\n\
                    open('outputs/table.csv', 'w').write('a,b\\n1,2\\n')\n\
                    os.makedirs('outputs/sub')\n\
                    open('outputs/sub/inner.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + bytes(8))\n\
                    open('outside.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + bytes(8))\n\
                    os.symlink('/etc/passwd', 'outputs/link.png')\n\
                    print('ok')";
        let r = run(&mut c, &s, code, None);
        assert_eq!(
            (r.exit.code, r.stdout.text.as_str()),
            (Some(0), "ok\n"),
            "{kind:?}: {r:?}"
        );
        let mut got = sent(&r);
        // The SVG goes out as its PNG rendering, of a size the test cannot know in advance.
        let svg_png = got.get(1).map(|g| g.2).unwrap_or_default();
        assert_eq!(
            got.drain(..)
                .map(|(p, m, n)| (p, m, if m == ImageMime::Png && n == svg_png { 0 } else { n }))
                .collect::<Vec<_>>(),
            vec![
                ("outputs/anim.bin".into(), ImageMime::Gif, 26),
                ("outputs/chart.svg".into(), ImageMime::Png, 0),
                ("outputs/photo.jpeg".into(), ImageMime::Jpeg, 111),
                ("outputs/pic.webp".into(), ImageMime::Webp, 32),
                ("outputs/renamed.txt".into(), ImageMime::Png, 48),
                ("outputs/sub/inner.png".into(), ImageMime::Png, 16),
            ],
            "{kind:?}"
        );
        let chart = &r.images[1];
        assert!(chart.data.0.starts_with(PNG_MAGIC), "{kind:?}");
        assert_eq!(
            chart.rendered_from_svg,
            Some(SvgRendering {
                width: 10,
                height: 10,
                text_left_out: false
            })
        );
        assert_eq!(pixel(&chart.data.0, 5, 5), [0, 0, 0, 255], "{kind:?}");
        assert_eq!((r.images_left_out, r.images_not_rendered), (vec![], vec![]));
        // The other files are listed with their sizes as before.
        let files: Vec<(&str, u64)> = r.files.iter().map(|f| (f.path.as_str(), f.size)).collect();
        assert_eq!(
            files,
            vec![
                ("outputs/anim.bin", 26),
                ("outputs/chart.svg", 238),
                ("outputs/fake.png", 19),
                ("outputs/photo.jpeg", 111),
                ("outputs/pic.webp", 32),
                ("outputs/renamed.txt", 48),
                ("outputs/sub/inner.png", 16),
                ("outputs/table.csv", 8),
                ("outside.png", 16),
            ],
            "{kind:?}"
        );
        // A run that removed the folder gets it back on its next run.
        let r = run(
            &mut c,
            &s,
            "import shutil; shutil.rmtree('outputs'); print('gone')",
            None,
        );
        assert_eq!(r.stdout.text, "gone\n");
        let r = run(
            &mut c,
            &s,
            "open('outputs/again.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n')",
            None,
        );
        assert_eq!(r.exit.code, Some(0), "{kind:?}: {r:?}");
        assert_eq!(sent(&r), vec![("outputs/again.png".into(), ImageMime::Png, 8)]);
        d.assert_serving();
    }
}

#[test]
fn matplotlib_svgs_come_back_as_png_renderings() {
    let Some(python) = sandbox_venv_python() else {
        return;
    };
    for kind in backends() {
        let d = Daemon::start_backend(kind, &["--python", &python]);
        let mut c = d.client();
        let s = session("svg");
        open(&mut c, &s);
        // A line plot (text as paths, matplotlib's default), a heatmap (imshow and the colorbar are PNGs
        // embedded as data URLs) and a plot whose text stays text.
        let code = r#"
import numpy as np
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.plot([1, 2, 3, 4], [10, 12, 9, 14], marker='o')
ax.set_title('orders per month')
fig.savefig('outputs/line.svg')
fig, ax = plt.subplots()
im = ax.imshow(np.arange(600).reshape(20, 30), cmap='viridis')
fig.colorbar(im)
fig.savefig('outputs/heat.svg')
plt.rcParams['svg.fonttype'] = 'none'
fig, ax = plt.subplots()
ax.set_title('text as text')
fig.savefig('outputs/text.svg')
print('saved')
"#;
        let r = run_with(&mut c, &s, code, Some(120_000), Some(1024));
        assert_eq!(
            (r.exit.code, r.stdout.text.as_str(), r.stderr.text.as_str()),
            (Some(0), "saved\n", ""),
            "{kind:?}: {r:?}"
        );
        // The file list names the SVGs; the images are PNGs of matplotlib's default 6.4 x 4.8 in figure.
        let files: Vec<&str> = r.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            files,
            vec!["outputs/heat.svg", "outputs/line.svg", "outputs/text.svg"],
            "{kind:?}"
        );
        let got: Vec<(&str, ImageMime, Option<SvgRendering>)> = r
            .images
            .iter()
            .map(|i| (i.path.as_str(), i.mime, i.rendered_from_svg))
            .collect();
        let rendering = |text_left_out| {
            Some(SvgRendering {
                width: 614,
                height: 460,
                text_left_out,
            })
        };
        assert_eq!(
            got,
            vec![
                ("outputs/heat.svg", ImageMime::Png, rendering(false)),
                ("outputs/line.svg", ImageMime::Png, rendering(false)),
                ("outputs/text.svg", ImageMime::Png, rendering(true)),
            ],
            "{kind:?}: {:?} {:?}",
            r.images_left_out,
            r.images_not_rendered
        );
        for image in &r.images {
            assert!(image.data.0.starts_with(PNG_MAGIC), "{kind:?} {}", image.path);
        }
        // The heatmap's embedded image is drawn: its middle is viridis, not the white of an empty axes.
        let [red, green, blue, alpha] = pixel(&r.images[0].data.0, 260, 230);
        assert!(
            alpha == 255 && (red, green, blue) != (255, 255, 255),
            "{kind:?}: {red} {green} {blue} {alpha}"
        );
        // The line plot's title is drawn (as paths): the band above the axes holds dark pixels.
        let line = tiny_skia::Pixmap::decode_png(&r.images[1].data.0).unwrap();
        let dark = (0..line.width())
            .flat_map(|x| (20..50).map(move |y| (x, y)))
            .filter(|&(x, y)| {
                line.pixel(x, y)
                    .is_some_and(|p| p.alpha() == 255 && p.red() < 100)
            })
            .count();
        assert!(dark > 50, "{kind:?}: {dark} dark pixels where the title is");
        d.assert_serving();
    }
}

#[test]
fn an_svg_is_rendered_without_reading_what_it_names_and_a_broken_one_is_named() {
    use std::os::unix::fs::PermissionsExt as _;
    // A red PNG on the host, readable by the daemon: the SVG names it; its rendering must not show it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let red = dir.path().join("red.png");
    let mut pixmap = tiny_skia::Pixmap::new(20, 20).unwrap();
    pixmap.fill(tiny_skia::Color::from_rgba8(255, 0, 0, 255));
    std::fs::write(&red, pixmap.encode_png().unwrap()).unwrap();
    std::fs::set_permissions(&red, std::fs::Permissions::from_mode(0o644)).unwrap();
    let red = red.display();
    for kind in backends() {
        let d = Daemon::start_backend(kind, &[]);
        let mut c = d.client();
        let s = session("svg-refs");
        open(&mut c, &s);
        let code = format!(
            r#"
svg = """<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink' width='80' height='20'>
<image xlink:href='{red}' width='20' height='20'/>
<image href='file://{red}' x='20' width='20' height='20'/>
<image href='file:///etc/passwd' x='40' width='20' height='20'/>
<image href='http://192.0.2.1/red.png' x='60' width='20' height='20'/>
</svg>"""
open('outputs/refs.svg', 'w').write(svg)
open('outputs/broken.svg', 'w').write('<svg xmlns="http://www.w3.org/2000/svg"><rect></svg>')
open('outputs/ok.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + bytes(8))
print('ok')
"#
        );
        let r = run(&mut c, &s, &code, None);
        assert_eq!(
            (r.exit.code, r.stdout.text.as_str()),
            (Some(0), "ok\n"),
            "{kind:?}: {r:?}"
        );
        let got: Vec<(&str, ImageMime)> = r.images.iter().map(|i| (i.path.as_str(), i.mime)).collect();
        assert_eq!(
            got,
            vec![
                ("outputs/ok.png", ImageMime::Png),
                ("outputs/refs.svg", ImageMime::Png)
            ],
            "{kind:?}: {:?}",
            r.images_not_rendered
        );
        let refs = &r.images[1].data.0;
        for x in [10, 30, 50, 70] {
            assert_eq!(pixel(refs, x, 10), [0, 0, 0, 0], "{kind:?}: x = {x}");
        }
        // The broken SVG is named with the reason; nothing else is lost.
        assert_eq!(r.images_not_rendered.len(), 1, "{kind:?}");
        let broken = &r.images_not_rendered[0];
        assert_eq!((broken.path.as_str(), broken.size), ("outputs/broken.svg", 52));
        assert!(
            broken.reason.starts_with("the SVG cannot be parsed: "),
            "{kind:?}: {}",
            broken.reason
        );
        assert_eq!(r.images_left_out, vec![]);
        assert_eq!(r.files.len(), 3, "{:?}", r.files);
        d.assert_serving();
    }
}

#[test]
fn code_that_closes_its_output_gets_a_clear_result() {
    // (code, exit code, stdout, what stderr contains)
    let cases: Vec<(&str, i32, &str, &str)> = vec![
        (
            "import os, sys\nprint('before', flush=True)\nsys.stderr.write('stderr kept\\n')\nos.close(1)\nprint('lost')",
            0,
            "before\n",
            "stderr kept",
        ),
        (
            "import sys\nprint('before')\nsys.stdout.close()\nprint('after')",
            1,
            "before\n",
            "ValueError: I/O operation on closed file",
        ),
        (
            "import os, sys\nprint('out', flush=True)\nos.close(1)\nos.close(2)\nsys.exit(3)",
            3,
            "out\n",
            "",
        ),
        (
            "import sys\nsys.stderr.write('why\\n')\nsys.stdout.close()\nsys.stderr.close()",
            0,
            "",
            "why",
        ),
    ];
    for kind in backends() {
        let d = Daemon::start_backend(kind, &[]);
        let mut c = d.client();
        let s = session("closes");
        open(&mut c, &s);
        for (code, exit, stdout, stderr) in &cases {
            let r = run(&mut c, &s, code, Some(20_000));
            assert_eq!(
                (r.exit.code, r.stdout.text.as_str()),
                (Some(*exit), *stdout),
                "{kind:?} {code:?}: {r:?}"
            );
            assert!(r.stderr.text.contains(stderr), "{kind:?} {code:?}: {r:?}");
            assert_eq!(r.limits_hit, vec![], "{kind:?} {code:?}");
            // The session keeps working after each.
            assert_eq!(run(&mut c, &s, "print(1)", None).stdout.text, "1\n");
        }
        d.assert_serving();
    }
}
