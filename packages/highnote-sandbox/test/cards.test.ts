import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningSandbox, startSandbox } from '../src/index.js';
import { availableCash, control, fundedCard, gql, mutate, usd } from './helpers.js';

let sandbox: RunningSandbox;

beforeAll(async () => {
  sandbox = await startSandbox({ applicationApprovalDelayMs: 5, transferSettlementDelayMs: 5 });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(async () => {
  await control(sandbox, '/_sandbox/reset');
});

const CARD_FIELDS =
  '... on PaymentCard { id status formFactor last4 bin network expirationMonth expirationYear physicalPaymentCardOrders { id orderState { status } } }';

function changeCard(action: 'activate' | 'suspend' | 'close', paymentCardId: string) {
  const inputType = `${action[0]?.toUpperCase()}${action.slice(1)}PaymentCardInput`;
  return mutate(sandbox, `${action}PaymentCard`, inputType, { paymentCardId }, CARD_FIELDS);
}

describe('provisioning', () => {
  it('seeds a card product whose funding account takes a simulated deposit', async () => {
    const seeded = await control(sandbox, '/_sandbox/card-products', {});
    expect(seeded).toMatchObject({
      cardProductId: expect.stringMatching(/^sbx_cp_/),
      fundingFinancialAccountId: expect.any(String),
    });
    const deposit = await mutate(
      sandbox,
      'simulateDeposit',
      'SimulateDepositInput',
      { toFinancialAccountId: seeded.fundingFinancialAccountId, amount: usd(250_000), source: 'WIRE' },
      '... on Transfer { status amount { value } }',
    );
    expect(deposit).toMatchObject({ __typename: 'Transfer', status: 'COMPLETED', amount: { value: 250_000 } });
    expect((await availableCash(sandbox, seeded.fundingFinancialAccountId)).available).toBe(250_000);
  });
});

describe('card lifecycle', () => {
  it('activates, suspends, unsuspends and closes a card, and refuses to touch a closed one', async () => {
    const { cardId } = await fundedCard(sandbox, { activateOnCreate: false });
    const read = await gql(sandbox, `query ($id: ID!) { node(id: $id) { ${CARD_FIELDS} } }`, { id: cardId });
    expect(read.node).toMatchObject({
      status: 'ACTIVATION_REQUIRED',
      formFactor: 'VIRTUAL',
      bin: expect.stringMatching(/^\d{6}$/),
      last4: expect.stringMatching(/^\d{4}$/),
      network: 'VISA',
      expirationMonth: '06',
      expirationYear: '2031',
    });

    expect(await changeCard('activate', cardId)).toMatchObject({ __typename: 'PaymentCard', status: 'ACTIVE' });
    expect(await changeCard('activate', cardId)).toMatchObject({ status: 'ACTIVE' });
    expect(await changeCard('suspend', cardId)).toMatchObject({ status: 'SUSPENDED' });
    expect(await changeCard('suspend', cardId)).toMatchObject({ status: 'SUSPENDED' });
    expect(await changeCard('activate', cardId)).toMatchObject({ status: 'ACTIVE' });
    expect(await changeCard('close', cardId)).toMatchObject({ status: 'CLOSED' });

    const closeAgain = await changeCard('close', cardId);
    expect(closeAgain).toMatchObject({ __typename: 'UserError', errors: [{ code: 'PAYMENT_CARD_ALREADY_CLOSED' }] });
    const activateClosed = await changeCard('activate', cardId);
    expect(activateClosed).toMatchObject({ __typename: 'UserError', errors: [{ code: 'PAYMENT_CARD_CLOSED' }] });
  });

  it('refuses to suspend a card that was never activated, and answers an unknown card with NOT_FOUND', async () => {
    const { cardId } = await fundedCard(sandbox, { activateOnCreate: false });
    expect(await changeCard('suspend', cardId)).toMatchObject({ errors: [{ code: 'PAYMENT_CARD_NOT_ACTIVE' }] });
    expect(await changeCard('close', 'sbx_pc_missing')).toMatchObject({ errors: [{ code: 'NOT_FOUND' }] });
  });

  it('never exposes a card number: the schema has no PAN field', async () => {
    const { cardId } = await fundedCard(sandbox);
    const response = await fetch(sandbox.graphqlUrl, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('sk_test_x').toString('base64')}` },
      body: JSON.stringify({
        query: 'query ($id: ID!) { node(id: $id) { ... on PaymentCard { restrictedDetails { __typename } } } }',
        variables: { id: cardId },
      }),
    });
    expect(response.status).toBe(400);
  });
});

const ORDER_FIELDS = `... on PhysicalPaymentCardOrder {
  id orderState { status } stateHistory { previousStatus newStatus }
  cardPersonalization { textLines { line1 line2 } }
  paymentCardShipment { requestedShipDate courier { method signatureRequiredOnDelivery tracking { trackingNumber actualShipDateLocal } }
    deliveryDetails { name { givenName familyName } address { postalCode } } }
  paymentCard { id formFactor }
}`;

function orderInput(paymentCardId: string) {
  return {
    paymentCardId,
    deliveryDetails: {
      name: { givenName: 'Grace', familyName: 'Hopper' },
      address: {
        streetAddress: '1 Navy Way',
        postalCode: '20001',
        region: 'DC',
        locality: 'Washington',
        countryCodeAlpha3: 'USA',
      },
    },
    cardPersonalization: { textLines: { line1: 'Grace Hopper', line2: 'Tranche' } },
    courier: { method: 'UPS_SECOND_DAY', signatureRequiredOnDelivery: true },
    requestedShipDate: '2030-01-15',
  };
}

function simulateOrder(step: string, inputType: string, input: Record<string, unknown>) {
  return mutate(sandbox, step, inputType, input, ORDER_FIELDS);
}

describe('physical cards', () => {
  it('takes an order from NEW through the printer to SHIPPED, with tracking', async () => {
    const { cardId } = await fundedCard(sandbox, { activateOnCreate: false });
    const order = await mutate(
      sandbox,
      'orderPhysicalPaymentCard',
      'OrderPhysicalPaymentCardInput',
      orderInput(cardId),
      ORDER_FIELDS,
    );
    expect(order).toMatchObject({
      __typename: 'PhysicalPaymentCardOrder',
      orderState: { status: 'NEW' },
      cardPersonalization: { textLines: { line1: 'GRACE HOPPER', line2: 'TRANCHE' } },
      paymentCardShipment: {
        requestedShipDate: '2030-01-15',
        courier: { method: 'UPS_SECOND_DAY', signatureRequiredOnDelivery: true, tracking: null },
        deliveryDetails: { name: { givenName: 'Grace' }, address: { postalCode: '20001' } },
      },
      paymentCard: { id: cardId, formFactor: 'PHYSICAL' },
    });
    const id = { physicalPaymentCardOrderId: order.id };
    const tooEarly = await simulateOrder(
      'simulatePhysicalPaymentCardOrderShipped',
      'SimulatePhysicalPaymentCardShippedInput',
      id,
    );
    expect(tooEarly).toMatchObject({ __typename: 'UserError', errors: [{ code: 'INVALID_ORDER_STATUS' }] });

    const printed = await simulateOrder(
      'simulatePhysicalPaymentCardOrderSendToPrinter',
      'SimulatePhysicalPaymentCardSendToPrinterInput',
      id,
    );
    expect(printed.orderState.status).toBe('SENT_TO_PRINTER');
    const approved = await simulateOrder(
      'simulatePhysicalPaymentCardOrderApproval',
      'SimulatePhysicalPaymentCardApprovalInput',
      id,
    );
    expect(approved.orderState.status).toBe('APPROVED');
    const shipped = await simulateOrder(
      'simulatePhysicalPaymentCardOrderShipped',
      'SimulatePhysicalPaymentCardShippedInput',
      {
        ...id,
        trackingNumber: '1Z999AA10123456784',
        actualShipDate: '2030-01-16',
      },
    );
    expect(shipped).toMatchObject({
      orderState: { status: 'SHIPPED' },
      paymentCardShipment: {
        courier: { tracking: { trackingNumber: '1Z999AA10123456784', actualShipDateLocal: '2030-01-16' } },
      },
    });
    expect(shipped.stateHistory.map((entry: { newStatus: string }) => entry.newStatus)).toEqual([
      'NEW',
      'SENT_TO_PRINTER',
      'APPROVED',
      'SHIPPED',
    ]);

    const byNode = await gql(sandbox, `query ($id: ID!) { node(id: $id) { ${ORDER_FIELDS} } }`, { id: order.id });
    expect(byNode.node.orderState.status).toBe('SHIPPED');
    const card = await gql(sandbox, `query ($id: ID!) { node(id: $id) { ${CARD_FIELDS} } }`, { id: cardId });
    expect(card.node.physicalPaymentCardOrders).toEqual([{ id: order.id, orderState: { status: 'SHIPPED' } }]);
  });

  it('fails a shipment only once approved, and cancels only while NEW', async () => {
    const { cardId } = await fundedCard(sandbox);
    const first = await mutate(
      sandbox,
      'orderPhysicalPaymentCard',
      'OrderPhysicalPaymentCardInput',
      orderInput(cardId),
      ORDER_FIELDS,
    );
    const canceled = await simulateOrder('cancelPhysicalPaymentCardOrder', 'CancelPhysicalPaymentCardOrderInput', {
      physicalPaymentCardOrderId: first.id,
    });
    expect(canceled).toMatchObject({ orderState: { status: 'CANCELED' }, paymentCard: { formFactor: 'VIRTUAL' } });

    const second = await mutate(
      sandbox,
      'orderPhysicalPaymentCard',
      'OrderPhysicalPaymentCardInput',
      orderInput(cardId),
      ORDER_FIELDS,
    );
    const id = { physicalPaymentCardOrderId: second.id };
    await simulateOrder(
      'simulatePhysicalPaymentCardOrderSendToPrinter',
      'SimulatePhysicalPaymentCardSendToPrinterInput',
      id,
    );
    const lateCancel = await simulateOrder('cancelPhysicalPaymentCardOrder', 'CancelPhysicalPaymentCardOrderInput', id);
    expect(lateCancel).toMatchObject({ errors: [{ code: 'INVALID_ORDER_STATUS' }] });
    await simulateOrder('simulatePhysicalPaymentCardOrderApproval', 'SimulatePhysicalPaymentCardApprovalInput', id);
    const failed = await simulateOrder(
      'simulatePhysicalPaymentCardOrderShipmentFailed',
      'SimulatePhysicalPaymentCardShipmentFailedInput',
      id,
    );
    expect(failed.orderState.status).toBe('SHIP_FAILED');
  });

  it('refuses personalization lines Highnote would refuse', async () => {
    const { cardId } = await fundedCard(sandbox);
    const input = orderInput(cardId);
    input.cardPersonalization.textLines.line1 = 'A name far longer than the card';
    const refused = await mutate(
      sandbox,
      'orderPhysicalPaymentCard',
      'OrderPhysicalPaymentCardInput',
      input,
      ORDER_FIELDS,
    );
    expect(refused).toMatchObject({
      __typename: 'UserError',
      errors: [{ code: 'INVALID_INPUT', errorPath: ['cardPersonalization', 'textLines', 'line1'] }],
    });
  });
});
