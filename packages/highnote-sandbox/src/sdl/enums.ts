import {
  CardTransactionProcessingType,
  ISO3166Alpha3Country,
  MerchantCategoryMccs,
  NotificationEventName,
  PointOfServiceCategory,
  PointOfServiceCategoryCondition,
  TransactionEventResponseCode,
} from '../generated/highnoteEnums.js';

/* Highnote's large enums, declared in full from the generated lists so that every value validates. */

function enumSdl(name: string, values: readonly string[]): string {
  return `enum ${name} {\n${values.map((value) => `  ${value}`).join('\n')}\n}\n`;
}

export const ENUMS_SDL = [
  enumSdl(
    'MerchantCategory',
    MerchantCategoryMccs.map(([category]) => category),
  ),
  enumSdl('ISO3166Alpha3Country', ISO3166Alpha3Country),
  enumSdl('TransactionEventResponseCode', TransactionEventResponseCode),
  enumSdl('NotificationEventName', NotificationEventName),
  enumSdl('CardTransactionProcessingType', CardTransactionProcessingType),
  enumSdl('PointOfServiceCategory', PointOfServiceCategory),
  enumSdl('PointOfServiceCategoryCondition', PointOfServiceCategoryCondition),
].join('\n');
