//! Draws the risk–coverage curve of an eval run as SVG (for the Markdown report and browsers)
//! and PNG (for chat tools and issue trackers that do not show SVG).
//!
//! x is coverage — the share of questions the assistant answers — and y the wrong-answer rate,
//! so a support team sees at a glance what answering more customers costs in wrong answers,
//! where their configured threshold sits, and which threshold meets their target.
//!
//! The SVG carries its text as SVG text. The PNG is drawn without system fonts: its text uses a
//! built-in 8×8 bitmap font (plain ASCII; `≤` is written `<=`), so it renders the same on any
//! machine, including CI.

use super::curve::{point_at, settable_threshold, CurvePoint};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// Size of both images, in pixels.
const SIZE: (u32, u32) = (900, 600);

const CURVE: RGBColor = RGBColor(31, 119, 180);
const CONFIGURED: RGBColor = RGBColor(230, 120, 0);
const CHOSEN: RGBColor = RGBColor(30, 150, 60);
const TARGET: RGBColor = RGBColor(200, 40, 40);

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("{path}: the bitmap plot is written as PNG and needs a .png file name")]
    NotPng { path: PathBuf },
}

/// What the plot shows, shared by both renderings.
struct Figure<'a> {
    points: &'a [CurvePoint],
    configured: f32,
    chosen: Option<&'a CurvePoint>,
    target: f64,
    title: &'a str,
}

/// Draws the curve with markers at the configured threshold and at `chosen` (the threshold
/// that meets `target_wrong_rate`), and a dashed line at the target, into `svg` and `png`.
pub fn draw(
    points: &[CurvePoint],
    configured: f32,
    chosen: Option<&CurvePoint>,
    target_wrong_rate: f64,
    title: &str,
    svg: &Path,
    png: &Path,
) -> Result<(), PlotError> {
    if !png.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        return Err(PlotError::NotPng { path: png.to_path_buf() });
    }
    let figure = Figure { points, configured, chosen, target: target_wrong_rate, title };

    let root = SVGBackend::new(svg, SIZE).into_drawing_area();
    render(&root, &figure).map_err(|message| PlotError::Draw { path: svg.to_path_buf(), message })?;
    drop(root);

    let root = glyph::GlyphText(BitMapBackend::new(png, SIZE)).into_drawing_area();
    render(&root, &figure).map_err(|message| PlotError::Draw { path: png.to_path_buf(), message })
}

/// A threshold as shown to people: two decimals.
fn show_threshold(t: f32) -> String {
    format!("{t:.2}")
}

/// A rate as a percentage with as few decimals as it needs (2%, 2.5%).
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else if (p * 10.0 - (p * 10.0).round()).abs() < 1e-9 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

/// The y-axis top: a little above the highest wrong-answer rate or the target, in steps of 5%.
fn y_top(figure: &Figure) -> f64 {
    let highest = figure.points.iter().map(|p| p.wrong_answer_rate).fold(figure.target, f64::max);
    let top = (highest * 1.15 / 0.05).ceil() * 0.05;
    if top.is_finite() {
        top.clamp(0.05, 1.0)
    } else {
        1.0
    }
}

fn render<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, figure: &Figure) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let top = y_top(figure);
    let mut chart = ChartBuilder::on(root)
        .caption(figure.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0f64..1.0f64, 0.0f64..top)
        .map_err(e)?;
    let x_fmt = |v: &f64| format!("{:.0}%", v * 100.0);
    let y_fmt = |v: &f64| if top > 0.1 { format!("{:.0}%", v * 100.0) } else { format!("{:.1}%", v * 100.0) };
    chart
        .configure_mesh()
        .x_desc("coverage (share of questions answered)")
        .y_desc("wrong answers (share of all questions)")
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_labels(11)
        .y_labels(11)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;

    // The target: a dashed horizontal line with its value at the right end.
    chart
        .draw_series(DashedLineSeries::new([(0.0, figure.target), (1.0, figure.target)], 8, 6, TARGET.stroke_width(2)))
        .map_err(e)?;

    let curve: Vec<(f64, f64)> = figure.points.iter().map(|p| (p.coverage, p.wrong_answer_rate)).collect();
    chart.draw_series(LineSeries::new(curve.iter().copied(), CURVE.stroke_width(2))).map_err(e)?;
    chart.draw_series(curve.iter().map(|&xy| Circle::new(xy, 2, CURVE.filled()))).map_err(e)?;

    let pixel = |p: &CurvePoint| chart.backend_coord(&(p.coverage, p.wrong_answer_rate));
    let (target_x, target_y) = chart.backend_coord(&(1.0, figure.target));
    let label = |size: u32, color: &RGBColor, pos: Pos| ("sans-serif", size).into_font().color(color).pos(pos);
    root.draw(&Text::new(
        format!("target {}", percent(figure.target)),
        (target_x - 4, target_y - 4),
        label(14, &TARGET, Pos::new(HPos::Right, VPos::Bottom)),
    ))
    .map_err(e)?;

    // Markers: the configured threshold above its point, the recommended one below its own,
    // each label on the side of the marker with more room.
    let mut marks = Vec::new();
    if let Some(p) = point_at(figure.points, figure.configured) {
        marks.push((p, CONFIGURED, format!("configured t={}", show_threshold(figure.configured)), -1));
    }
    if let Some(p) = figure.chosen {
        let text = if p.coverage > 0.0 {
            format!("≤{} wrong at t={}", percent(figure.target), show_threshold(settable_threshold(p.threshold)))
        } else {
            format!("≤{} wrong only by answering nothing", percent(figure.target))
        };
        marks.push((*p, CHOSEN, text, 1));
    }
    for (point, color, text, side) in marks {
        let (x, y) = pixel(&point);
        root.draw(&Circle::new((x, y), 7, color.filled())).map_err(e)?;
        root.draw(&Circle::new((x, y), 7, BLACK.stroke_width(1))).map_err(e)?;
        let h = if point.coverage > 0.6 { HPos::Right } else { HPos::Left };
        let dx = if point.coverage > 0.6 { -12 } else { 12 };
        let v = if side < 0 { VPos::Bottom } else { VPos::Top };
        let style = label(16, &color, Pos::new(h, v));
        let (tx, ty) = (x + dx, y + side * 10);
        // A light box behind the label keeps it readable where it crosses the curve or grid.
        let (w, ht) = root.estimate_text_size(&text, &style).map_err(e)?;
        let (w, ht) = (i32::try_from(w).unwrap_or(0), i32::try_from(ht).unwrap_or(0));
        let left = if point.coverage > 0.6 { tx - w } else { tx };
        let top_y = if side < 0 { ty - ht } else { ty };
        let backdrop =
            Rectangle::new([(left - 3, top_y - 2), (left + w + 3, top_y + ht + 2)], WHITE.mix(0.85).filled());
        root.draw(&backdrop).map_err(e)?;
        root.draw(&Text::new(text, (tx, ty), style)).map_err(e)?;
    }
    root.present().map_err(e)
}

mod glyph {
    use plotters::prelude::DrawingBackend;
    use plotters::style::text_anchor::{HPos, VPos};
    use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

    /// Wraps a pixel backend and draws its text with the built-in 8×8 bitmap font, so the PNG
    /// needs no font files. Everything else is passed through.
    pub(super) struct GlyphText<B>(pub(super) B);

    impl<B> GlyphText<B> {
        /// Glyph scale for a font size: 8 px glyphs up to size 17, 16 px from 18 on.
        pub(super) fn scale(size: f64) -> i32 {
            ((size / 12.0).round() as i32).max(1)
        }

        /// The text as glyph rows, non-ASCII characters replaced by ASCII look-alikes or `?`.
        fn glyphs(text: &str) -> Vec<[u8; 8]> {
            let mut ascii = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '≤' => ascii.push_str("<="),
                    '≥' => ascii.push_str(">="),
                    '–' | '—' | '−' => ascii.push('-'),
                    '…' => ascii.push_str("..."),
                    '→' => ascii.push_str("->"),
                    '×' => ascii.push('x'),
                    '‘' | '’' => ascii.push('\''),
                    '“' | '”' => ascii.push('"'),
                    c if c.is_ascii() && !c.is_ascii_control() => ascii.push(c),
                    _ => ascii.push('?'),
                }
            }
            ascii
                .bytes()
                .map(|b| font8x8::legacy::BASIC_LEGACY.get(usize::from(b)).copied().unwrap_or([0; 8]))
                .collect()
        }

        pub(super) fn text_size(text: &str, size: f64) -> (i32, i32) {
            let s = Self::scale(size);
            let n = i32::try_from(Self::glyphs(text).len()).unwrap_or(i32::MAX);
            (n.saturating_mul(8 * s), 8 * s)
        }
    }

    impl<B: DrawingBackend> DrawingBackend for GlyphText<B> {
        type ErrorType = B::ErrorType;

        fn get_size(&self) -> (u32, u32) {
            self.0.get_size()
        }

        fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.ensure_prepared()
        }

        fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.present()
        }

        fn draw_pixel(
            &mut self,
            point: BackendCoord,
            color: BackendColor,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_pixel(point, color)
        }

        fn draw_line<S: BackendStyle>(
            &mut self,
            from: BackendCoord,
            to: BackendCoord,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_line(from, to, style)
        }

        fn draw_rect<S: BackendStyle>(
            &mut self,
            upper_left: BackendCoord,
            bottom_right: BackendCoord,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_rect(upper_left, bottom_right, style, fill)
        }

        fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            path: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_path(path, style)
        }

        fn draw_circle<S: BackendStyle>(
            &mut self,
            center: BackendCoord,
            radius: u32,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.draw_circle(center, radius, style, fill)
        }

        fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            vert: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.fill_polygon(vert, style)
        }

        fn blit_bitmap(
            &mut self,
            pos: BackendCoord,
            size: (u32, u32),
            src: &[u8],
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.0.blit_bitmap(pos, size, src)
        }

        fn draw_text<S: BackendTextStyle>(
            &mut self,
            text: &str,
            style: &S,
            pos: BackendCoord,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            let color = style.color();
            if color.alpha == 0.0 {
                return Ok(());
            }
            let s = Self::scale(style.size());
            let (width, height) = Self::text_size(text, style.size());
            let anchor = style.anchor();
            let dx = match anchor.h_pos {
                HPos::Left => 0,
                HPos::Center => -width / 2,
                HPos::Right => -width,
            };
            let dy = match anchor.v_pos {
                VPos::Top => 0,
                VPos::Center => -height / 2,
                VPos::Bottom => -height,
            };
            let transform = style.transform();
            let (w, h) = self.get_size();
            let (w, h) = (i32::try_from(w).unwrap_or(i32::MAX), i32::try_from(h).unwrap_or(i32::MAX));
            for (i, glyph) in Self::glyphs(text).iter().enumerate() {
                let left = dx + i32::try_from(i).unwrap_or(i32::MAX).saturating_mul(8 * s);
                for (row, bits) in (0i32..).zip(glyph.iter()) {
                    for col in 0..8i32 {
                        if bits >> col & 1 == 0 {
                            continue;
                        }
                        // One font pixel is an s×s square of image pixels, turned with the text.
                        for (sx, sy) in (0..s).flat_map(|sx| (0..s).map(move |sy| (sx, sy))) {
                            let (x, y) = transform.transform(left + col * s + sx, dy + row * s + sy);
                            let (x, y) = (pos.0 + x, pos.1 + y);
                            if (0..w).contains(&x) && (0..h).contains(&y) {
                                self.0.draw_pixel((x, y), color)?;
                            }
                        }
                    }
                }
            }
            Ok(())
        }

        fn estimate_text_size<S: BackendTextStyle>(
            &self,
            text: &str,
            style: &S,
        ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
            let (w, h) = Self::text_size(text, style.size());
            Ok((w.unsigned_abs(), h.unsigned_abs()))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::glyph::GlyphText;
    use super::*;

    fn points() -> Vec<CurvePoint> {
        // A run of 100 cases.
        let p = |threshold, coverage: f64, wrong_answer_rate: f64| CurvePoint {
            threshold,
            answered: (coverage * 100.0).round() as usize,
            wrong: (wrong_answer_rate * 100.0).round() as usize,
            coverage,
            wrong_answer_rate,
            risk: (coverage > 0.0).then(|| wrong_answer_rate / coverage),
        };
        vec![
            p(0.0, 0.9, 0.12),
            p(0.3, 0.8, 0.08),
            p(0.5, 0.7, 0.05),
            p(0.62, 0.55, 0.02),
            p(0.8, 0.3, 0.0),
            p(1.0001, 0.0, 0.0),
        ]
    }

    #[test]
    fn draws_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let (svg, png) = (dir.path().join("curve.svg"), dir.path().join("curve.png"));
        let points = points();
        draw(&points, 0.5, Some(&points[3]), 0.02, "tallyhawk — risk vs coverage", &svg, &png).unwrap();

        let svg_text = std::fs::read_to_string(&svg).unwrap();
        assert!(svg_text.contains("<svg"));
        assert!(svg_text.contains("configured t=0.50"));
        assert!(svg_text.contains("≤2% wrong at t=0.62"));
        let png_bytes = std::fs::read(&png).unwrap();
        assert!(png_bytes.len() > 1000);
        assert!(png_bytes.starts_with(&[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']));
    }

    #[test]
    fn draws_an_empty_run_and_rejects_a_non_png_name() {
        let dir = tempfile::tempdir().unwrap();
        let (svg, png) = (dir.path().join("a.svg"), dir.path().join("a.png"));
        draw(&[], 0.5, None, 0.02, "empty", &svg, &png).unwrap();
        assert!(std::fs::metadata(&png).unwrap().len() > 0);
        let err = draw(&points(), 0.5, None, 0.02, "x", &svg, &dir.path().join("a.bmp")).unwrap_err();
        assert!(matches!(err, PlotError::NotPng { .. }));
    }

    #[test]
    fn glyph_text_reports_its_size_and_maps_non_ascii() {
        assert_eq!(GlyphText::<()>::text_size("ab", 14.0), (16, 8));
        assert_eq!(GlyphText::<()>::text_size("≤2%", 24.0), (64, 16));
        assert_eq!(percent(0.02), "2%");
        assert_eq!(percent(0.025), "2.5%");
        assert_eq!(percent(0.0125), "1.25%");
    }
}
