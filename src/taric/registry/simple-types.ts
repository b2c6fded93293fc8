// TARIC3 (TMES v5.10) simple types: the value rules each record field follows.
// Facets are kept as the format states them (decimal bounds as strings, so no
// float ever rounds a limit); xsd generation and value validation both read
// this table, so Herald's schema and its import checks cannot drift apart.

export type Base = 'string' | 'int' | 'decimal' | 'date' | 'dateTime';

export interface SimpleType {
  base: Base;
  length?: number;
  minLength?: number;
  maxLength?: number;
  /** XSD regular expression; the whole value must match. */
  pattern?: string;
  enumeration?: readonly string[];
  minInclusive?: string;
  maxInclusive?: string;
  minExclusive?: string;
  fractionDigits?: number;
}

export const SIMPLE_TYPES = {
  RecordCode: { base: 'string', pattern: "\\d\\d\\d" },
  RecordSequenceNumber: { base: 'int', minInclusive: '1', maxInclusive: '99999999' },
  SubRecordCode: { base: 'string', pattern: "\\d\\d" },
  TransactionId: { base: 'int', minInclusive: '1', maxInclusive: '99999999' },
  UpdateType: { base: 'string', length: 1, enumeration: ["1", "2", "3"] },
  ActionCode: { base: 'string', pattern: "\\d\\d\\d?" },
  AdditionalCode: { base: 'string', length: 3, pattern: "[A-Z0-9][A-Z0-9][A-Z0-9]" },
  AdditionalCodeTypeId: { base: 'string', length: 1, pattern: "[A-Z0-9]" },
  ApplicationCodeAdditionalCode: { base: 'string', length: 1, enumeration: ["0", "1", "3", "4"] },
  ApplicationCodeFootnote: { base: 'string', length: 1, enumeration: ["1", "2", "3", "4", "5", "6", "7", "8", "9"] },
  ApprovedFlag: { base: 'string', length: 1, enumeration: ["0", "1"] },
  AreaCode: { base: 'string', length: 1, enumeration: ["0", "1", "2"] },
  CertificateCode: { base: 'string', length: 3, pattern: "[A-Z0-9][A-Z0-9][A-Z0-9]" },
  CertificateTypeCode: { base: 'string', length: 1, pattern: "[A-Z0-9]" },
  ChapterHeading: { base: 'string', length: 2, pattern: "[0-9][0-9]" },
  Code: { base: 'string', maxLength: 10 },
  CodeTypeId: { base: 'string', maxLength: 4, enumeration: ["ACT", "COND", "DE", "GA", "MOU", "MQC", "MT", "NG", "RLTP"] },
  CommunityCode: { base: 'string', length: 1, enumeration: ["1", "2", "3", "4"] },
  ComponentSequenceNumber: { base: 'int', minInclusive: '1', maxInclusive: '999' },
  ConditionCode: { base: 'string', pattern: "[A-Z][A-Z]?" },
  Date: { base: 'date', pattern: "\\d{4}-\\d{2}-\\d{2}" },
  DutyAmount: { base: 'decimal', maxInclusive: '9999999.999', fractionDigits: 3 },
  DutyAmountApplicabilityCode: { base: 'int', enumeration: ["0", "1", "2"] },
  DutyExpressionId: { base: 'string', length: 2 },
  ExchangeRate: { base: 'decimal', maxInclusive: '99999999.99999999', fractionDigits: 8, minExclusive: '0' },
  ExportRefundCode: { base: 'string', length: 3 },
  FootnoteId: { base: 'string', pattern: "[0-9]{5}|[0-9]{3}" },
  FootnoteTypeId: { base: 'string', pattern: "[A-Z]{2}|[A-Z]{3}" },
  GeographicalAreaId: { base: 'string', maxLength: 4, pattern: "[A-Z0-9]{2}|[A-Z0-9]{4}" },
  GoodsNomenclatureItemId: { base: 'string', length: 10, pattern: "[0-9]{10}" },
  GoodsNomenclatureGroupId: { base: 'string', maxLength: 6, pattern: "[0-9]{6}" },
  GoodsNomenclatureGroupType: { base: 'string', length: 1, pattern: "[A-Z]" },
  LanguageId: { base: 'string', length: 2, pattern: "[A-Z][A-Z]" },
  LongDescription: { base: 'string', maxLength: 20000 },
  MeasureExplosionLevel: { base: 'int', enumeration: ["2", "4", "6", "8", "10"] },
  MeasurementUnitApplicabilityCode: { base: 'string', length: 1, enumeration: ["0", "1", "2"] },
  MeasurementUnitCode: { base: 'string', length: 3, pattern: "[A-Z][A-Z][A-Z]" },
  MeasurementUnitQualifierCode: { base: 'string', length: 1, pattern: "[A-Z]" },
  MeasureTypeId: { base: 'string', pattern: "[0-9]{3}|[0-9]{6}" },
  MeasureTypeCombination: { base: 'string', length: 1 },
  MeasureTypeSeriesId: { base: 'string', pattern: "[A-Z][A-Z]?" },
  MeursingHeadingNumber: { base: 'string', pattern: "\\d{1,3}" },
  MeursingTablePlanId: { base: 'string', length: 2, pattern: "\\d\\d" },
  MonetaryUnitApplicabilityCode: { base: 'string', length: 1, enumeration: ["0", "1", "2"] },
  MonetaryUnitCode: { base: 'string', length: 3, pattern: "[A-Z]{3}" },
  NomenclatureGroupFacilityCode: { base: 'string', length: 1, enumeration: ["0", "2"] },
  NumberOf: { base: 'string', length: 2, pattern: "\\d\\d" },
  OfficialJournalNumber: { base: 'string', maxLength: 5 },
  OfficialJournalPage: { base: 'int', minInclusive: '1', maxInclusive: '9999' },
  OrderNumber: { base: 'string', length: 6, pattern: "[0-9]{6}" },
  OrderNumberCaptureCode: { base: 'string', length: 1, enumeration: ["1", "2"] },
  OriginCode: { base: 'string', length: 1, enumeration: ["0", "1", "2"] },
  PriorityCode: { base: 'string', length: 1, enumeration: ["1", "2", "3", "4", "5", "6", "7", "8", "9"] },
  ProductLineSuffix: { base: 'string', length: 2, pattern: "[0-9][0-9]" },
  PublicationCode: { base: 'string', length: 1, enumeration: ["0", "1", "2", "3"] },
  PublicationSigle: { base: 'string', maxLength: 20 },
  QuotaAmount: { base: 'decimal', maxInclusive: '99999999999.999', fractionDigits: 3 },
  QuotaCoefficient: { base: 'decimal', maxInclusive: '99999999999.99999', fractionDigits: 5 },
  QuotaBlockingPeriodType: { base: 'string', length: 1, pattern: "[0-9]" },
  QuotaCriticalStateCode: { base: 'string', length: 1, enumeration: ["Y", "N"] },
  QuotaCriticalTreshold: { base: 'int', minInclusive: '0', maxInclusive: '100' },
  QuotaPrecision: { base: 'string', length: 1, enumeration: ["0", "1", "2", "3"] },
  QuotaBlockedStateCode: { base: 'string', length: 1, enumeration: ["Y", "N"] },
  QuotaExhaustedStateCode: { base: 'string', length: 1, enumeration: ["Y", "N"] },
  QuotaSuspendedStateCode: { base: 'string', length: 1, enumeration: ["Y", "N"] },
  QuotaClosedCode: { base: 'string', length: 1, enumeration: ["Y", "N"] },
  QuotaAllocatedPercentage: { base: 'decimal', maxInclusive: '999.999', fractionDigits: 3 },
  ReductionIndicator: { base: 'string', length: 1, enumeration: ["1", "2", "3", "4", "5", "6", "7", "8", "9"] },
  RelationType: { base: 'string', length: 2, enumeration: ["EQ", "NM"] },
  RegulationGroupId: { base: 'string', length: 3, pattern: "[A-Z][A-Z][A-Z]" },
  RegulationId: { base: 'string', length: 8 },
  RegulationRoleTypeId: { base: 'string', length: 1, enumeration: ["1", "2", "3", "4", "5", "6", "7", "8"] },
  ReplacementIndicator: { base: 'string', length: 1, enumeration: ["0", "1", "2"] },
  RowColumnCode: { base: 'string', length: 1, enumeration: ["0", "1"] },
  ShortDescription: { base: 'string', maxLength: 1000 },
  StoppedFlag: { base: 'string', length: 1, enumeration: ["0", "1"] },
  SID: { base: 'int', minInclusive: '1', maxInclusive: '99999999' },
  StatisticalIndicator: { base: 'string', length: 1, enumeration: ["0", "1"] },
  SubHeadingSequenceNumber: { base: 'string', pattern: "\\d{1,4}" },
  SurveillanceNumber: { base: 'string', length: 6, pattern: "[0-9]{6}" },
  TableLineSequenceNumber: { base: 'int', minInclusive: '1', maxInclusive: '99999' },
  Timestamp: { base: 'dateTime', pattern: "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}" },
  TradeMovementCode: { base: 'string', length: 1, enumeration: ["0", "1", "2"] },
} satisfies Record<string, SimpleType>;

export type SimpleTypeName = keyof typeof SIMPLE_TYPES;
