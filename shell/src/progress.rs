//! The progress bar of a `LOAD` or a `TRAIN`, drawn on a terminal's stderr only.

use gnnrec_engine::{LoadProgress, LoadStage, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar that appears with the first progress report of a statement and is cleared when
/// the statement ends. When disabled it ignores every report.
pub(crate) struct StatementBar {
    enabled: bool,
    bar: Option<ProgressBar>,
    stage: Option<LoadStage>,
}

impl StatementBar {
    pub(crate) fn new(enabled: bool) -> StatementBar {
        StatementBar { enabled, bar: None, stage: None }
    }

    pub(crate) fn update(&mut self, progress: Progress) {
        if !self.enabled {
            return;
        }
        match progress {
            Progress::Load(p) => self.load(p),
            Progress::Epoch { report, epochs } => {
                let bar = self.bar.get_or_insert_with(|| {
                    let bar =
                        ProgressBar::with_draw_target(Some(epochs as u64), ProgressDrawTarget::stderr());
                    let style =
                        ProgressStyle::with_template("   epoch [{bar:40}] {pos}/{len} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar());
                    bar.set_style(style.progress_chars("=> "));
                    bar
                });
                bar.set_position(report.epoch as u64);
                bar.set_message(format!("loss {:.4} val ndcg@20 {:.4}", report.loss, report.val_ndcg));
            }
        }
    }

    fn load(&mut self, progress: LoadProgress) {
        let bar = self.bar.get_or_insert_with(|| {
            ProgressBar::with_draw_target(Some(progress.total), ProgressDrawTarget::stderr())
        });
        if self.stage != Some(progress.phase) {
            self.stage = Some(progress.phase);
            let (message, template) = match progress.phase {
                LoadStage::Parsing => ("parsing", "{msg:>8} [{bar:40}] {bytes}/{total_bytes} {elapsed}"),
                LoadStage::Logging => {
                    ("logging", "{msg:>8} [{bar:40}] {human_pos}/{human_len} edges {elapsed}")
                }
                LoadStage::Applying => {
                    ("applying", "{msg:>8} [{bar:40}] {human_pos}/{human_len} edges {elapsed}")
                }
            };
            let style =
                ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(message);
        }
        bar.set_length(progress.total);
        bar.set_position(progress.done);
    }

    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
