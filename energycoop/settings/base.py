"""Settings shared by every environment. Environment-specific modules import from here."""

from __future__ import annotations

from energycoop.settings import env

BASE_DIR = env.BASE_DIR

SECRET_KEY = env.get_str("DJANGO_SECRET_KEY", "insecure-dev-key-change-me-0123456789abcdefghijklmnop")
DEBUG = env.get_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env.get_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.get_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "apps.common",
    "apps.members",
    "apps.meters",
    "apps.assets",
    "apps.market",
    "apps.settlement",
    "apps.ledger",
    "apps.billing",
    "apps.grid",
    "apps.realtime",
    "apps.portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "energycoop.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "energycoop.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.common.context_processors.coop",
            ],
        },
    },
]

DATABASES = {"default": env.database_config(f"sqlite:///{BASE_DIR / 'var' / 'energycoop.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "members.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# django-allauth: email is the login, verified before the first sign-in; TOTP + recovery codes.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[energycoop] "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "energycoop"

EMAIL_BACKEND = env.get_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env.get_str("DEFAULT_FROM_EMAIL", "energycoop <noreply@energycoop.invalid>")
# Server errors (500) are mailed to ADMINS when DEBUG is off (Django's mail_admins handler).
ADMINS = env.get_admins("DJANGO_ADMINS")
SERVER_EMAIL = env.get_str("SERVER_EMAIL", DEFAULT_FROM_EMAIL)

LANGUAGE_CODE = "en"
# The coop's own time zone: what pages show and what a billing month means. Storage is UTC.
TIME_ZONE = env.get_str("COOP_TIME_ZONE", "Europe/Amsterdam")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Redis: the Celery broker and the Channels layer. Unset means in-process transports
# (`make run` starts an embedded Redis-protocol server and sets it for all its processes).
REDIS_URL = env.get_str("REDIS_URL")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "apps.realtime.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.get_str("CHANNELS_PREFIX", "energycoop")},
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery 6's default, chosen now: on a lost broker connection, running late-acknowledged tasks
# are cancelled and redelivered (every task is idempotent), and the worker says nothing more.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = env.get_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_BEAT_SCHEDULE_FILENAME = env.get_str(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / "var" / "celerybeat-schedule")
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.members.api.authentication.PersonalTokenAuthentication",
        "apps.meters.api.authentication.DeviceKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.common.api.permissions.IsMember"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.common.api.pagination.DefaultPagination",
    "EXCEPTION_HANDLER": "apps.common.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "energycoop API",
    "DESCRIPTION": "The public API of the energycoop portal (see CONTRACT.md).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- The coop's business settings -------------------------------------------------------
COOP_NAME = env.get_str("COOP_NAME", "energycoop")
CURRENCY = env.get_str("COOP_CURRENCY", "EUR")
MARKET_INTERVAL_MINUTES = env.get_int("MARKET_INTERVAL_MINUTES", 15)
MARKET_OPEN_HOURS = env.get_int("MARKET_OPEN_HOURS", 24)
MARKET_GATE_CLOSURE_MINUTES = env.get_int("MARKET_GATE_CLOSURE_MINUTES", 5)
# Clearing mechanism: pay_as_clear (uniform price, the default) or pay_as_bid.
MARKET_MECHANISM = env.get_str("MARKET_MECHANISM", "pay_as_clear")
# Automated trading: how often it runs and how many intervals ahead it places orders.
AUTOTRADE_SECONDS = env.get_int("AUTOTRADE_SECONDS", 60)
AUTOTRADE_INTERVALS = env.get_int("AUTOTRADE_INTERVALS", 4)
# Tariffs used when no time-of-use schedule or dynamic price covers an interval (per kWh).
TARIFF_DEFAULT_RETAIL = env.get_str("TARIFF_DEFAULT_RETAIL", "0.30000")
TARIFF_DEFAULT_FEED_IN = env.get_str("TARIFF_DEFAULT_FEED_IN", "0.07000")
TARIFF_DEFAULT_IMBALANCE = env.get_str("TARIFF_DEFAULT_IMBALANCE", "0.30000")
TARIFF_DEFAULT_NETWORK_FEE = env.get_str("TARIFF_DEFAULT_NETWORK_FEE", "0.03000")
TARIFF_DEFAULT_COOP_FEE = env.get_str("TARIFF_DEFAULT_COOP_FEE", "0.00500")
# Settlement mode: p2p (the market's trades, the default rules) or community sharing without
# a market: community_sdr (supply-demand ratio), community_mmr (mid-market rate),
# community_bs (bill sharing).
SETTLEMENT_MODE = env.get_str("SETTLEMENT_MODE", "p2p")
# Settlement: an interval is settled when its readings are in, or this long after it ended
# (estimating what is missing); corrections are booked for this many days; the first run
# looks back this far.
SETTLEMENT_CUTOFF_MINUTES = env.get_int("SETTLEMENT_CUTOFF_MINUTES", 60)
SETTLEMENT_CORRECTION_DAYS = env.get_int("SETTLEMENT_CORRECTION_DAYS", 7)
SETTLEMENT_LOOKBACK_HOURS = env.get_int("SETTLEMENT_LOOKBACK_HOURS", 48)
# Connection capacity of a household grid connection when none is registered (3x25 A).
DEFAULT_CONNECTION_CAPACITY_W = env.get_int("DEFAULT_CONNECTION_CAPACITY_W", 17250)
# Business clock (CONTRACT.md): shifted time for market, readings, clearing, settlement, beat.
ENERGYCOOP_CLOCK = env.get_str("ENERGYCOOP_CLOCK")
ENERGYCOOP_CLOCK_ANCHOR = env.get_str("ENERGYCOOP_CLOCK_ANCHOR")
# Public price ticker for visitors without an account: off unless the coop opts in.
REALTIME_PUBLIC_TICKER = env.get_bool("REALTIME_PUBLIC_TICKER", False)
# The coop's location (the demo simulator uses it for PV output).
COOP_LATITUDE = env.get_str("COOP_LATITUDE", "52.09")
COOP_LONGITUDE = env.get_str("COOP_LONGITUDE", "5.12")

# How often beat proves the worker alive (the operator status page; the portal smoke test).
HEARTBEAT_SECONDS = env.get_int("HEARTBEAT_SECONDS", 30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.get_str("LOG_LEVEL", "INFO")},
}
