import type { ColumnType, Generated } from 'kysely';
import type { ApplicationStatus } from '../cards/application.js';
import type { CardFormFactor, CardStatus } from '../cards/card.js';
import type { DisbursementStatus } from '../disbursements/disbursement.js';
import type { EnrollmentStatus } from '../enrollments/enrollment.js';
import type { AccountKind, TransferCode, TransferKind } from '../ledger/kinds.js';
import type { ProgramStatus } from '../programs/program.js';
import type { UserTaskStatus } from '../usertasks/usertask.js';

// Row types of the tables created by the migrations; money columns are bigint cents.

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json = ColumnType<unknown, string | undefined, string>;

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: Timestamp;
}

export interface ApiKeysTable {
  organization_id: string;
  id: string;
  secret_hash: string;
  secret_prefix: string;
  created_at: Timestamp;
  revoked_at: Date | null;
}

export interface LedgerAccountsTable {
  organization_id: string;
  id: string;
  program_id: string | null;
  kind: AccountKind;
  debits_pending_cents: ColumnType<bigint, bigint | undefined, bigint>;
  debits_posted_cents: ColumnType<bigint, bigint | undefined, bigint>;
  credits_pending_cents: ColumnType<bigint, bigint | undefined, bigint>;
  credits_posted_cents: ColumnType<bigint, bigint | undefined, bigint>;
  debits_must_not_exceed_credits: boolean;
  credits_must_not_exceed_debits: boolean;
  frozen: Generated<boolean>;
  created_at: Timestamp;
}

export interface LedgerTransfersTable {
  organization_id: string;
  id: string;
  debit_account_id: string;
  credit_account_id: string;
  amount_cents: bigint;
  kind: TransferKind;
  pending_id: string | null;
  code: TransferCode;
  program_id: string;
  user_task_id: string | null;
  created_at: Timestamp;
}

export interface ProgramsTable {
  organization_id: string;
  id: string;
  name: string;
  description: string | null;
  program_type: string | null;
  card_product_id: string | null;
  total_award_pool_cents: bigint;
  max_participants: number;
  participant_count: Generated<number>;
  status: Generated<ProgramStatus>;
  starts_at: Date | string | null;
  ends_at: Date | string | null;
  metadata: Json;
  pool_account_id: string;
  in_transit_account_id: string;
  disbursed_account_id: string;
  funding_account_id: string;
  spend_controls: ColumnType<unknown, string | undefined, string>;
  created_at: Timestamp;
  updated_at: Timestamp;
  closed_at: Date | string | null;
}

export interface UsersTable {
  organization_id: string;
  id: string;
  external_id: string | null;
  highnote_account_holder_id: string | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  phone_number: string | null;
  date_of_birth: string | null;
  address: ColumnType<unknown, string | null | undefined, string | null>;
  metadata: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface EnrollmentsTable {
  organization_id: string;
  program_id: string;
  user_id: string;
  status: EnrollmentStatus;
  enrolled_at: Timestamp;
  dismissed_at: Date | string | null;
}

export interface TasksTable {
  organization_id: string;
  id: string;
  program_id: string;
  name: string;
  description: string | null;
  monetary_value_cents: bigint;
  starts_at: Date | string | null;
  ends_at: Date | string | null;
  metadata: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface UserTasksTable {
  organization_id: string;
  id: string;
  program_id: string;
  user_id: string;
  task_id: string | null;
  name: string | null;
  status: UserTaskStatus;
  monetary_value_cents: bigint;
  completed_amount_cents: bigint | null;
  reservation_transfer_id: string;
  resolution_transfer_id: string | null;
  completed_by: string | null;
  evidence: ColumnType<unknown, string | null | undefined, string | null>;
  cancellation_reason: string | null;
  expires_at: Date | string | null;
  completed_at: Date | string | null;
  cancelled_at: Date | string | null;
  expired_at: Date | string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface DisbursementsTable {
  organization_id: string;
  id: string;
  user_task_id: string;
  program_id: string;
  user_id: string;
  amount_cents: bigint;
  status: DisbursementStatus;
  failure_reason: string | null;
  settled_at: Date | string | null;
  card_id: ColumnType<string | null, string | null | undefined, string | null>;
  attempt: Generated<number>;
  transfer_idempotency_key: ColumnType<string | null, string | null | undefined, string | null>;
  highnote_transfer_id: ColumnType<string | null, string | null | undefined, string | null>;
  failure_code: ColumnType<string | null, string | null | undefined, string | null>;
  cancelled_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface IssuerConfigurationsTable {
  organization_id: string;
  environment: 'sandbox' | 'test' | 'live';
  graphql_url: string;
  api_key_ciphertext: string | null;
  api_key_last4: string | null;
  card_product_id: string;
  funding_financial_account_id: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface IssuerRequestsTable {
  organization_id: string;
  operation: string;
  request_key: string;
  issuer_id: string;
  local_id: string | null;
  created_at: Timestamp;
}

export interface ApplicationsTable {
  organization_id: string;
  id: string;
  user_id: string;
  card_product_id: string;
  highnote_application_id: string;
  status: ApplicationStatus;
  consent_accepted_at: Timestamp;
  consent_ip_address: string | null;
  highnote_financial_account_id: string | null;
  denial_reason: string | null;
  decided_at: Date | string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CardsTable {
  organization_id: string;
  id: string;
  user_id: string;
  application_id: string;
  card_product_id: string;
  highnote_payment_card_id: string;
  highnote_financial_account_id: string;
  form_factor: CardFormFactor;
  status: CardStatus;
  last4: string | null;
  network: string | null;
  expiration_date: string | null;
  physical_order_id: string | null;
  physical_order_status: string | null;
  shipping: ColumnType<unknown, string | null | undefined, string | null>;
  spend_rules: ColumnType<unknown, string | undefined, string>;
  spend_controls_digest: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  closed_at: Date | string | null;
}

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  request_hash: string;
  response_status: number | null;
  response_body: ColumnType<unknown, string | null | undefined, string | null>;
  created_at: Timestamp;
  expires_at: Date | string;
}

export interface EventsTable {
  organization_id: string;
  id: string;
  sequence: ColumnType<bigint, never, never>;
  type: string;
  data: ColumnType<unknown, string, never>;
  request_id: string | null;
  actor: string;
  created_at: ColumnType<Date, Date | string, never>;
}

export interface Database {
  events: EventsTable;
  organizations: OrganizationsTable;
  api_keys: ApiKeysTable;
  ledger_accounts: LedgerAccountsTable;
  ledger_transfers: LedgerTransfersTable;
  programs: ProgramsTable;
  users: UsersTable;
  enrollments: EnrollmentsTable;
  tasks: TasksTable;
  user_tasks: UserTasksTable;
  disbursements: DisbursementsTable;
  issuer_configurations: IssuerConfigurationsTable;
  issuer_requests: IssuerRequestsTable;
  applications: ApplicationsTable;
  cards: CardsTable;
  idempotency_keys: IdempotencyKeysTable;
}
