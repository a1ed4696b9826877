//! Logistic regression over named features: the form of the confidence model, and its fit.
//!
//! Features are standardised with the training set's mean and spread (kept in the model, so a
//! prediction standardises the same way), then weighted and squashed: `p = 1 / (1 + e^-z)`. The
//! fit is Newton's method (iteratively reweighted least squares) with an L2 penalty, which
//! converges in a handful of steps for the dozen features and few thousand cases it sees, with
//! no learning rate to tune. Cases carry weights so that each dataset can count the same
//! however many cases it has.

use serde::{Deserialize, Serialize};

/// A fitted logistic model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logistic {
    /// Feature names, in the order of `mean`, `scale` and `weights`.
    pub features: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Logistic {
    /// A model that ignores its input and always gives `sigmoid(bias)`.
    pub fn constant(bias: f32) -> Logistic {
        Logistic { features: Vec::new(), mean: Vec::new(), scale: Vec::new(), weights: Vec::new(), bias }
    }

    /// Checks that the vectors line up and hold finite numbers.
    pub fn check(&self) -> Result<(), String> {
        let n = self.features.len();
        if self.mean.len() != n || self.scale.len() != n || self.weights.len() != n {
            return Err(format!(
                "{n} features but {} means, {} scales and {} weights",
                self.mean.len(),
                self.scale.len(),
                self.weights.len()
            ));
        }
        if self.mean.iter().chain(&self.weights).any(|v| !v.is_finite()) || self.bias.is_nan() {
            return Err("a mean, weight or the bias is not a finite number".into());
        }
        if self.scale.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err("every scale must be a positive number".into());
        }
        Ok(())
    }

    /// The linear score before the squash.
    pub fn logit(&self, value: impl Fn(&str) -> f32) -> f64 {
        let mut z = f64::from(self.bias);
        for (i, name) in self.features.iter().enumerate() {
            let x = (f64::from(value(name)) - f64::from(self.mean[i])) / f64::from(self.scale[i]);
            z += f64::from(self.weights[i]) * x;
        }
        z
    }

    /// The probability in [0, 1]; `value` gives each named feature.
    pub fn predict(&self, value: impl Fn(&str) -> f32) -> f32 {
        let z = self.logit(value);
        if z.is_nan() {
            return 0.0;
        }
        sigmoid(z) as f32
    }
}

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub x: Vec<f32>,
    pub y: bool,
    pub weight: f64,
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            if f == 0.0 {
                continue;
            }
            let (upper, lower) = a.split_at_mut(row);
            for (x, y) in lower[0][col..n].iter_mut().zip(&upper[col][col..n]) {
                *x -= f * y;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Fits a logistic model with an L2 penalty `l2` on the (standardised) weights, not the bias.
/// Returns `None` when there are no examples or the examples hold only one class.
pub fn fit(names: &[&str], examples: &[Example], l2: f64) -> Option<Logistic> {
    let n = names.len();
    let total: f64 = examples.iter().map(|e| e.weight).sum();
    let positive: f64 = examples.iter().filter(|e| e.y).map(|e| e.weight).sum();
    if total <= 0.0 || positive <= 0.0 || positive >= total {
        return None;
    }
    let mut mean = vec![0.0f64; n];
    for e in examples {
        for (m, x) in mean.iter_mut().zip(&e.x) {
            *m += e.weight * f64::from(*x) / total;
        }
    }
    let mut scale = vec![0.0f64; n];
    for e in examples {
        for ((s, x), m) in scale.iter_mut().zip(&e.x).zip(&mean) {
            *s += e.weight * (f64::from(*x) - m).powi(2) / total;
        }
    }
    // A feature that never varies gets scale 1 (and, penalised, a weight of 0).
    let scale: Vec<f64> = scale.iter().map(|v| if v.sqrt() > 1e-6 { v.sqrt() } else { 1.0 }).collect();
    let rows: Vec<Vec<f64>> = examples
        .iter()
        .map(|e| {
            let mut r: Vec<f64> =
                e.x.iter().zip(&mean).zip(&scale).map(|((x, m), s)| (f64::from(*x) - m) / s).collect();
            r.push(1.0);
            r
        })
        .collect();
    // Parameters: n weights then the bias, started at the base rate.
    let mut w = vec![0.0f64; n + 1];
    w[n] = (positive / (total - positive)).ln();
    for _ in 0..50 {
        let mut grad = vec![0.0f64; n + 1];
        let mut hess = vec![vec![0.0f64; n + 1]; n + 1];
        for (r, e) in rows.iter().zip(examples) {
            let z: f64 = r.iter().zip(&w).map(|(a, b)| a * b).sum();
            let p = sigmoid(z);
            let y = if e.y { 1.0 } else { 0.0 };
            let g = e.weight * (y - p);
            let h = e.weight * (p * (1.0 - p)).max(1e-9);
            for i in 0..=n {
                grad[i] += g * r[i];
                for j in 0..=n {
                    hess[i][j] += h * r[i] * r[j];
                }
            }
        }
        for i in 0..n {
            grad[i] -= l2 * w[i];
            hess[i][i] += l2;
        }
        let step = solve(hess, grad)?;
        let mut largest = 0.0f64;
        for (wi, si) in w.iter_mut().zip(&step) {
            *wi += si;
            largest = largest.max(si.abs());
        }
        if largest < 1e-8 {
            break;
        }
    }
    Some(Logistic {
        features: names.iter().map(|s| s.to_string()).collect(),
        mean: mean.iter().map(|v| *v as f32).collect(),
        scale: scale.iter().map(|v| *v as f32).collect(),
        weights: w[..n].iter().map(|v| *v as f32).collect(),
        bias: w[n] as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator for synthetic data (splitmix64).
    fn next(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn the_fit_recovers_the_direction_and_size_of_known_weights() {
        // y ~ Bernoulli(sigmoid(3 x0 - 2 x1)), x2 is noise.
        let mut s = 7u64;
        let mut examples = Vec::new();
        for _ in 0..4000 {
            let x: Vec<f32> = (0..3).map(|_| (next(&mut s) * 2.0 - 1.0) as f32).collect();
            let p = sigmoid(3.0 * f64::from(x[0]) - 2.0 * f64::from(x[1]));
            examples.push(Example { y: next(&mut s) < p, x, weight: 1.0 });
        }
        let m = fit(&["a", "b", "noise"], &examples, 1e-3).expect("fits");
        // Weights are per standard deviation (uniform on [-1, 1]: sd = 0.577).
        let raw: Vec<f32> = m.weights.iter().zip(&m.scale).map(|(w, s)| w / s).collect();
        assert!((raw[0] - 3.0).abs() < 0.4, "{raw:?}");
        assert!((raw[1] + 2.0).abs() < 0.4, "{raw:?}");
        assert!(raw[2].abs() < 0.3, "{raw:?}");
        let p = m.predict(|n| match n {
            "a" => 1.0,
            "b" => -1.0,
            _ => 0.0,
        });
        assert!(p > 0.95, "{p}");
    }

    #[test]
    fn weights_make_a_small_group_count_as_much_as_a_large_one() {
        // Group A (many cases) says x predicts y; group B (few cases) says the opposite.
        let mut examples = Vec::new();
        for i in 0..900 {
            let x = if i % 2 == 0 { 1.0 } else { -1.0 };
            examples.push(Example { x: vec![x], y: x > 0.0, weight: 1.0 / 900.0 });
        }
        for i in 0..100 {
            let x = if i % 2 == 0 { 1.0 } else { -1.0 };
            examples.push(Example { x: vec![x], y: x < 0.0, weight: 1.0 / 100.0 });
        }
        let m = fit(&["x"], &examples, 1e-3).expect("fits");
        assert!(m.weights[0].abs() < 0.05, "balanced groups cancel out: {:?}", m.weights);
    }

    #[test]
    fn one_class_or_no_data_fits_nothing() {
        assert!(fit(&["x"], &[], 1.0).is_none());
        let all_true: Vec<Example> = (0..5).map(|i| Example { x: vec![i as f32], y: true, weight: 1.0 }).collect();
        assert!(fit(&["x"], &all_true, 1.0).is_none());
    }

    #[test]
    fn a_separable_set_stays_finite_under_the_penalty() {
        let examples: Vec<Example> = (0..20).map(|i| Example { x: vec![i as f32], y: i >= 10, weight: 1.0 }).collect();
        let m = fit(&["x"], &examples, 1.0).expect("fits");
        assert!(m.check().is_ok() && m.weights[0] > 0.0);
    }

    #[test]
    fn a_mismatched_model_is_refused_by_check() {
        let mut m = Logistic::constant(0.0);
        m.features.push("x".into());
        assert!(m.check().is_err());
    }
}
