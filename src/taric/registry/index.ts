import { RECORD_TYPES, type FieldDef, type RecordType } from './records.js';
import { SIMPLE_TYPES, type Base, type SimpleType, type SimpleTypeName } from './simple-types.js';

// The one entry point to the registry: the rest of Herald looks record types
// up here (a Map, since the serializer asks once per record of a 40 MB export).

export { RECORD_TYPES, SIMPLE_TYPES };
export type { Base, FieldDef, RecordType, SimpleType, SimpleTypeName };

const byElement = new Map<string, RecordType>(RECORD_TYPES.map((t) => [t.element, t]));

export function getRecordType(element: string): RecordType | undefined {
  return byElement.get(element);
}

export function getSimpleType(name: string): SimpleType | undefined {
  return Object.hasOwn(SIMPLE_TYPES, name) ? (SIMPLE_TYPES as Record<string, SimpleType>)[name] : undefined;
}

/** Record types export can render: those with a record and subrecord code. */
export function isExportable(type: RecordType): boolean {
  return type.recordCode !== null && type.subrecordCode !== null;
}
