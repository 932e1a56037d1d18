//! Recovery at any volume: [`start`] records a recovery of a hook's failed (or dropped)
//! deliveries in a time range and queues its first step; each [`step`] re-queues one page of
//! them, records its cursor, then queues the next step, so an outage of any size is re-sent
//! without a long request.

use super::PortError;
use crate::domain::clock::now_ms;
use crate::domain::delivery::{DeliveryStatus, Job};
use crate::domain::hook::HookId;
use crate::domain::recovery::{Recovery, RecoveryId, RecoveryStatus, RecoveryStep};
use crate::domain::task::Task;
use crate::ports::{DeliveryFilter, JobQueue, Store};

/// Failed deliveries one recovery step re-queues.
const RECOVERY_PAGE: usize = 200;
/// A running recovery not advanced for this long lost its next step.
const STALLED_RECOVERY_MS: i64 = 60_000;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// It queued its page of re-sends.
    Resent(usize),
    /// A copy of a step already done, or of a recovery done or unknown.
    Skipped,
}

/// Starts re-sending every delivery of `hook` that failed or was dropped among those created
/// in `[since, until]` (unix ms): the recovery is recorded and its first step queued.
pub async fn start(
    store: &dyn Store,
    queue: &dyn JobQueue,
    hook: &HookId,
    since: i64,
    until: i64,
) -> Result<Recovery, PortError> {
    let now = now_ms();
    let recovery = Recovery {
        id: RecoveryId::generate(),
        hook_id: hook.clone(),
        since,
        until,
        status: RecoveryStatus::Running,
        resent: 0,
        steps: 0,
        cursor: None,
        created_at: now,
        updated_at: now,
    };
    store.create_recovery(&recovery).await?;
    let step = RecoveryStep {
        hook_id: hook.clone(),
        recovery_id: recovery.id.clone(),
        after: None,
        due_at: now,
    };
    queue.enqueue_tasks(&[Task::Recovery(step)]).await?;
    tracing::info!(hook_id = %hook, recovery_id = %recovery.id, since, until, "recovery started");
    Ok(recovery)
}

/// One step of a recovery: queues a re-send of one page of failed deliveries, records the
/// step, then queues the next one. The re-send jobs make their delivery pending themselves, so
/// a step stopped half-way leaves nothing pending without a job.
pub async fn step(
    store: &dyn Store,
    queue: &dyn JobQueue,
    step: &RecoveryStep,
) -> Result<StepOutcome, PortError> {
    let Some(recovery) = store.get_recovery(&step.hook_id, &step.recovery_id).await? else {
        tracing::warn!(hook_id = %step.hook_id, recovery_id = %step.recovery_id, "step of an unknown recovery");
        return Ok(StepOutcome::Skipped);
    };
    let now = now_ms();
    if recovery.status != RecoveryStatus::Running {
        return Ok(StepOutcome::Skipped);
    }
    if recovery.cursor != step.after {
        // A copy of a step already recorded. If the chain went quiet (its next step was lost
        // when a sender stopped after recording), start it again from the cursor.
        if recovery.updated_at + STALLED_RECOVERY_MS <= now {
            queue
                .enqueue_tasks(&[Task::Recovery(RecoveryStep {
                    after: recovery.cursor.clone(),
                    due_at: now,
                    ..step.clone()
                })])
                .await?;
        }
        return Ok(StepOutcome::Skipped);
    }
    let filter = DeliveryFilter {
        statuses: Some(vec![DeliveryStatus::Error, DeliveryStatus::Dropped]),
        ..DeliveryFilter::between(recovery.since, recovery.until)
    };
    let page = store
        .page_deliveries(&step.hook_id, &filter, step.after.as_ref(), RECOVERY_PAGE)
        .await?;
    // Synchronous calls are never re-sent: their caller decided.
    let jobs: Vec<Job> = page
        .items
        .iter()
        .filter(|d| !d.sync)
        .map(|d| Job {
            reopen: true,
            ..Job::for_delivery(d, now)
        })
        .collect();
    if !jobs.is_empty() {
        queue.enqueue(&jobs).await?;
    }
    let recorded = store
        .advance_recovery(
            &step.hook_id,
            &step.recovery_id,
            step.after.as_ref(),
            page.next.as_ref(),
            jobs.len() as u64,
            now,
        )
        .await?;
    if recorded && let Some(next) = page.next {
        queue
            .enqueue_tasks(&[Task::Recovery(RecoveryStep {
                after: Some(next),
                due_at: now,
                ..step.clone()
            })])
            .await?;
    }
    tracing::info!(hook_id = %step.hook_id, recovery_id = %step.recovery_id, resent = jobs.len(), "recovery step");
    Ok(StepOutcome::Resent(jobs.len()))
}
