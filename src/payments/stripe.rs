//! Stripe's API, through async-stripe. This is the only module that names async-stripe's types:
//! the rest of the service sees [`Gateway`], [`Intent`] and [`StripeRefund`], so a new version of
//! the crate touches this file alone.
//!
//! The gateway runs its requests on a small runtime of its own, so they can be awaited from a
//! request handler and waited for from the sweeper's thread alike.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
};
use stripe_core::refund::{CreateRefund, ListRefund, RetrieveRefund};
use stripe_shared::{PaymentIntent, PaymentIntentStatus, Refund};

/// Where a PaymentIntent stands, as far as this service cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentStatus {
    /// Waiting for the attendee: a card to be given, confirmed or authenticated.
    Open,
    /// The bank is working on it.
    Processing,
    Succeeded,
    Cancelled,
}

/// What this service reads of a PaymentIntent.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    /// Handed to the attendee's browser for Stripe.js; never stored.
    pub client_secret: Option<String>,
    pub amount: i64,
    /// Lower case, as Stripe writes it (`eur`).
    pub currency: String,
    pub status: IntentStatus,
    pub amount_received: i64,
}

/// A refund as Stripe answered it.
#[derive(Debug, Clone)]
pub struct StripeRefund {
    pub id: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    pub metadata: HashMap<String, String>,
}

fn refund_of(refund: Refund) -> StripeRefund {
    StripeRefund {
        id: refund.id.as_str().to_owned(),
        status: refund.status.unwrap_or_else(|| "pending".to_owned()),
        metadata: refund.metadata.unwrap_or_default(),
    }
}

/// A request Stripe did not carry out.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Stripe answered, and said no (a bad request, a declined card, an unknown id).
    #[error("Stripe refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// No usable answer: Stripe unreachable, timed out or answering something unreadable. The
    /// request may or may not have taken effect; retrying with the same idempotency key is safe.
    #[error("Stripe could not be asked: {0}")]
    Unavailable(String),
}

impl GatewayError {
    /// Whether asking again later could give another answer: Stripe unreachable, busy (429),
    /// failing (5xx), or still working on the first request with the same idempotency key (409).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::Refused { status, .. } => matches!(*status, 409 | 429) || *status >= 500,
        }
    }

    /// A 5xx: Stripe keeps this answer for the idempotency key it was given, so a retry needs
    /// a new key (once it is known that the first request did nothing).
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::Refused { status, .. } if *status >= 500)
    }
}

impl From<StripeError> for GatewayError {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Stripe(error, status) => Self::Refused {
                status,
                message: error
                    .message
                    .clone()
                    .unwrap_or_else(|| "no message".to_owned()),
            },
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Stripe, with the account's keys.
#[derive(Clone)]
pub struct Gateway {
    client: Client,
    publishable_key: String,
    runtime: Arc<OwnRuntime>,
}

/// The gateway's runtime, shut down without waiting when the last gateway goes (which may
/// happen inside another runtime, where waiting is not allowed).
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl OwnRuntime {
    fn handle(&self) -> Result<&tokio::runtime::Runtime, GatewayError> {
        self.0
            .as_ref()
            .ok_or_else(|| GatewayError::Unavailable("the gateway has stopped".to_owned()))
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("publishable_key", &self.publishable_key)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway talking to `api_base` (Stripe's own, or a test double) with the secret key.
    pub fn new(
        secret_key: &str,
        publishable_key: &str,
        api_base: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("stripe")
            .enable_all()
            .build()?;
        // The client's TLS set-up looks for the process's crypto provider.
        crate::install_crypto_provider();
        let client = ClientBuilder::new(secret_key)
            .url(api_base)
            .timeout(timeout)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up the Stripe client: {e}"))?;
        Ok(Self {
            client,
            publishable_key: publishable_key.to_owned(),
            runtime: Arc::new(OwnRuntime(Some(runtime))),
        })
    }

    pub fn publishable_key(&self) -> &str {
        &self.publishable_key
    }

    /// Creates a card PaymentIntent. `idempotency_key` makes a retry return the first intent
    /// instead of creating another.
    pub async fn create_intent(
        &self,
        amount: i64,
        currency: &str,
        metadata: HashMap<String, String>,
        idempotency_key: &str,
    ) -> Result<Intent, GatewayError> {
        let key = idempotency(idempotency_key)?;
        let currency: stripe_types::Currency = match currency.to_ascii_lowercase().parse() {
            Ok(currency) => currency,
            Err(never) => match never {},
        };
        let client = self.client.clone();
        self.run(async move {
            let intent = CreatePaymentIntent::new(amount, currency)
                .metadata(metadata)
                .customize()
                .request_strategy(RequestStrategy::Idempotent(key))
                .send(&client)
                .await?;
            Ok(intent_of(intent))
        })
        .await
    }

    pub async fn retrieve_intent(&self, id: &str) -> Result<Intent, GatewayError> {
        let client = self.client.clone();
        let id = id.to_owned();
        self.run(async move {
            let intent = RetrievePaymentIntent::new(id.as_str())
                .send(&client)
                .await?;
            Ok(intent_of(intent))
        })
        .await
    }

    /// Refunds `amount` of a succeeded PaymentIntent. The same `idempotency_key` never refunds
    /// twice.
    pub async fn refund(
        &self,
        intent_id: &str,
        amount: i64,
        metadata: HashMap<String, String>,
        idempotency_key: &str,
    ) -> Result<StripeRefund, GatewayError> {
        let key = idempotency(idempotency_key)?;
        let client = self.client.clone();
        let intent_id = intent_id.to_owned();
        self.run(async move {
            let refund = CreateRefund::new()
                .payment_intent(intent_id)
                .amount(amount)
                .metadata(metadata)
                .customize()
                .request_strategy(RequestStrategy::Idempotent(key))
                .send(&client)
                .await?;
            Ok(refund_of(refund))
        })
        .await
    }

    /// Cancels a PaymentIntent that is no longer wanted, so it cannot be paid any more.
    pub async fn cancel_intent(&self, id: &str) -> Result<Intent, GatewayError> {
        let client = self.client.clone();
        let id = id.to_owned();
        self.run(async move {
            let intent = CancelPaymentIntent::new(id.as_str()).send(&client).await?;
            Ok(intent_of(intent))
        })
        .await
    }

    pub async fn retrieve_refund(&self, id: &str) -> Result<StripeRefund, GatewayError> {
        let client = self.client.clone();
        let id = id.to_owned();
        self.run(async move {
            let refund = RetrieveRefund::new(id.as_str()).send(&client).await?;
            Ok(refund_of(refund))
        })
        .await
    }

    /// The refunds of a PaymentIntent (the most recent 100).
    pub async fn refunds_of(&self, intent_id: &str) -> Result<Vec<StripeRefund>, GatewayError> {
        let client = self.client.clone();
        let intent_id = intent_id.to_owned();
        self.run(async move {
            let list = ListRefund::new()
                .payment_intent(intent_id)
                .limit(100)
                .send(&client)
                .await?;
            Ok(list.data.into_iter().map(refund_of).collect())
        })
        .await
    }

    /// Runs a request on the gateway's runtime and waits for it from any thread that is not
    /// itself driving a runtime (the sweeper's).
    pub fn block_on<T>(&self, request: impl Future<Output = T>) -> Result<T, GatewayError> {
        Ok(self.runtime.handle()?.block_on(request))
    }

    async fn run<T: Send + 'static>(
        &self,
        request: impl Future<Output = Result<T, GatewayError>> + Send + 'static,
    ) -> Result<T, GatewayError> {
        self.runtime
            .handle()?
            .spawn(request)
            .await
            .map_err(|e| GatewayError::Unavailable(format!("the request stopped: {e}")))?
    }
}

fn idempotency(key: &str) -> Result<IdempotencyKey, GatewayError> {
    IdempotencyKey::new(key)
        .map_err(|e| GatewayError::Unavailable(format!("bad idempotency key {key:?}: {e}")))
}

fn intent_of(intent: PaymentIntent) -> Intent {
    let status = match intent.status {
        PaymentIntentStatus::Succeeded => IntentStatus::Succeeded,
        PaymentIntentStatus::Canceled => IntentStatus::Cancelled,
        PaymentIntentStatus::Processing | PaymentIntentStatus::RequiresCapture => {
            IntentStatus::Processing
        }
        _ => IntentStatus::Open,
    };
    Intent {
        id: intent.id.as_str().to_owned(),
        client_secret: intent.client_secret,
        amount: intent.amount,
        currency: intent.currency.to_string(),
        status,
        amount_received: intent.amount_received,
    }
}
